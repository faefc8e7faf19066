-- Mean category scores per CSM: where each book of business is weakest.
SELECT csm,
       COUNT(*) AS accounts,
       AVG(health_score) AS health_score,
       AVG(user_engagement_score) AS user_engagement,
       AVG(product_experience_score) AS product_experience,
       AVG(company_engagement_score) AS company_engagement,
       AVG(product_analytics_score) AS product_analytics,
       AVG(session_replay_score) AS session_replay,
       AVG(feature_flags_experiments_score) AS feature_flags_experiments,
       AVG(surveys_data_warehouse_score) AS surveys_data_warehouse
FROM health
GROUP BY csm
ORDER BY health_score ASC
