-- PostgreSQL tells every instance's live feed which calls changed (db/migrations/pg/); SQLite's
-- feed reads the timeline's ids, which grow in commit order there. Nothing to do here.
SELECT 1;
