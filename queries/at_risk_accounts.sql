-- Accounts that need a human first: poor or concerning, or with any risk indicator,
-- lowest score first. Columns a CSM reads in their morning review.
SELECT org_id, name, csm, health_score, health_label, risk_count, opportunity_count,
       days_since_last_seen, active_user_pct
FROM health
WHERE health_label <> 'healthy' OR risk_count > 0
ORDER BY health_score ASC, org_id ASC
