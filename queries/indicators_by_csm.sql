-- How many of each indicator every CSM has in their book today.
SELECT h.csm, i.indicator, i.kind, COUNT(*) AS accounts
FROM indicators i
JOIN health h ON h.org_id = i.org_id
GROUP BY h.csm, i.indicator, i.kind
ORDER BY h.csm, accounts DESC, i.indicator
