-- The per-tenant time index in ascending order: every new call then lands at the end of its
-- tenant's range (SQLite appends to a full page instead of splitting one), which keeps the
-- index half the size and an inbound call's insert cheaper. Newest-first lists walk it backwards.
DROP INDEX calls_tenant_started;
CREATE INDEX calls_tenant_started ON calls (tenant_id, started_at);
