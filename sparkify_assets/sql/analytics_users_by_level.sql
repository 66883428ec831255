-- analytics_users_by_level: users per subscription level, each user counted once at the level of
-- their latest event (the users dimension), with the share of all users.
SELECT u.level, COUNT(*) AS users, CAST(COUNT(*) AS DOUBLE PRECISION) / total.users AS share_of_users
FROM users u
CROSS JOIN (SELECT COUNT(*) AS users FROM users) total
GROUP BY u.level, total.users
