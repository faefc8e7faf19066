-- The handbook's outreach list: members who start insights but do not save them, or
-- whose queries fail, over the last 7 days.
SELECT u.org_id, h.name, h.csm, u.distinct_id, u.email, u.role,
       u.insights_started_7d, u.insights_saved_7d, u.queries_failed_7d, u.queries_completed_7d
FROM users u
JOIN health h ON h.org_id = u.org_id
WHERE (u.insights_started_7d >= 5 AND u.insights_saved_7d * 5 < u.insights_started_7d)
   OR (u.queries_failed_7d >= 3 AND u.queries_failed_7d * 10 > u.queries_completed_7d + u.queries_failed_7d)
ORDER BY u.queries_failed_7d DESC, u.insights_started_7d DESC, u.org_id, u.distinct_id
