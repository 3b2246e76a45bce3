-- Version 4: every revocation announced to the instances' near-caches (LISTEN/NOTIFY), from
-- the transaction that makes it, so a notification is delivered exactly when the change
-- commits. The channel is per schema ('oauth:' and the schema, cut to 63 bytes as PostgreSQL
-- cuts identifiers); the payloads are `Invalidation::encode`'s. A deleted access token is
-- announced unless it expired more than five minutes ago (the purge's rows; the margin covers
-- clocks that disagree).
CREATE FUNCTION oauth_announce_access() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.expires_at > extract(epoch FROM now())::bigint - 300 THEN
        PERFORM pg_notify(left('oauth:' || TG_TABLE_SCHEMA, 63), 'a:' || encode(OLD.hash, 'hex'));
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER oauth_access_tokens_announce AFTER DELETE ON oauth_access_tokens
    FOR EACH ROW EXECUTE FUNCTION oauth_announce_access();
CREATE FUNCTION oauth_announce_grant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(left('oauth:' || TG_TABLE_SCHEMA, 63), 'g:' || encode(NEW.id, 'hex'));
    RETURN NULL;
END $$;
CREATE TRIGGER oauth_grants_announce AFTER UPDATE OF revoked ON oauth_grants
    FOR EACH ROW WHEN (NEW.revoked AND NOT OLD.revoked) EXECUTE FUNCTION oauth_announce_grant();
