-- Delete at most $2 rows that may go as of $1. The table, its key and the query that selects
-- the rows are spliced in (see statements.rs). Column: how many went.
WITH d AS (
    DELETE FROM /* table */ WHERE /* key */ IN (/* rows */ LIMIT $2) RETURNING 1
)
SELECT count(*) FROM d
