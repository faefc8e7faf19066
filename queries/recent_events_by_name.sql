-- Which events members send, from the raw input (ad-hoc check of an export).
SELECT event, COUNT(*) AS events, COUNT(DISTINCT distinct_id) AS people
FROM events
GROUP BY event
ORDER BY events DESC, event
