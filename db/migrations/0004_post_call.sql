-- ElevenLabs post-call webhooks: one row per conversation received (idempotency), linked to
-- the call it was matched to, or kept as an orphan (call_id NULL) with its bounded payload.
CREATE TABLE post_call_conversations (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT    NOT NULL UNIQUE,
    call_id         INTEGER REFERENCES calls (id) ON DELETE SET NULL,
    tenant_id       INTEGER REFERENCES tenants (id),
    outcome         TEXT    NOT NULL CHECK (outcome IN ('processed', 'orphan')),
    intent          TEXT    CHECK (intent IN ('book_appointment', 'raise_ticket', 'other')),
    agent_id        TEXT,
    call_sid        TEXT,
    external_number TEXT,
    event_timestamp INTEGER,
    summary         TEXT,
    payload         TEXT,
    received_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX post_call_orphans ON post_call_conversations (received_at) WHERE outcome = 'orphan';
-- The session of a conversation is looked up by its id.
CREATE INDEX calls_conversation ON calls (conversation_id) WHERE conversation_id IS NOT NULL;
