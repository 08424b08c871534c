-- The analyst role: SELECT on ExtractGuard's database and nothing else (no INSERT, ALTER, DROP,
-- no access management), for the people who investigate with SQL. A ClickHouse server only: the
-- embedded engine (chdb) has no access management, so `migrate` skips this file there and records
-- it as applied. Grant it to analysts' users with EXTRACTGUARD_CLICKHOUSE_ANALYST_GRANTEES (the
-- Helm chart's clickhouse.analystGrantees).
-- +server-only
-- +up
CREATE ROLE IF NOT EXISTS extractguard_analyst;
GRANT SELECT ON {database}.* TO extractguard_analyst;
-- +down
DROP ROLE IF EXISTS extractguard_analyst;
