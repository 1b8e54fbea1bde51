-- Every instance's dashboard feed hears which calls changed: a call's visible changes all come
-- with a timeline event or a transcript line, and a notification is delivered after its commit,
-- in commit order (ids from a sequence are not: a reader going by ids could skip one committed
-- late). Repeats within a transaction are folded into one by PostgreSQL.
CREATE FUNCTION sb_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sb_live', NEW.call_id::text);
    RETURN NULL;
END
$$;
CREATE TRIGGER call_events_live AFTER INSERT ON call_events FOR EACH ROW EXECUTE FUNCTION sb_live_notify();
CREATE TRIGGER transcripts_live AFTER INSERT ON transcripts FOR EACH ROW EXECUTE FUNCTION sb_live_notify();
