-- Weekday-only weekly trend of event volume and daily active members, per org.
SELECT org_id, week_start, event_count_in_period_weekday_mean, active_members_weekday_mean
FROM trends
ORDER BY org_id, week_start
