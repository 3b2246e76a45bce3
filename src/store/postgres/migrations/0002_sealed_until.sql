-- Version 2: the purge clears each sealed grace-window response once its window has closed, so
-- that a copy of the database holds none for long; this index finds them.
CREATE INDEX oauth_refresh_tokens_sealed ON oauth_refresh_tokens (sealed_until)
    WHERE sealed_until IS NOT NULL;
