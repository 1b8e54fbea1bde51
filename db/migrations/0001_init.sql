-- Initial schema. Times are UTC ISO-8601 text with milliseconds.
-- A NULL in a tenant's AI or transfer column means "use the server's setting".

CREATE TABLE tenants (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT    NOT NULL,
    greeting             TEXT,
    ai_provider          TEXT CHECK (ai_provider IN ('openai', 'elevenlabs', 'echo', 'none')),
    ai_voice             TEXT,
    ai_instructions      TEXT,
    inbound_mode         TEXT    NOT NULL DEFAULT 'ai' CHECK (inbound_mode IN ('ai', 'transfer', 'elevenlabs_forward')),
    primary_target       TEXT,
    secondary_target     TEXT,
    voicemail_target     TEXT,
    caller_id_policy     TEXT CHECK (caller_id_policy IN ('original', 'business')),
    max_concurrent_calls INTEGER,
    created_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- The DIDs a tenant answers; an inbound call's To number picks the tenant.
CREATE TABLE tenant_numbers (
    number    TEXT    PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
);

CREATE TABLE customers (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    external_id TEXT,
    name        TEXT,
    phone       TEXT,
    email       TEXT,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (tenant_id, external_id)
);
CREATE INDEX customers_phone ON customers (tenant_id, phone);

-- One row per inbound call or outbound session.
CREATE TABLE calls (
    id                   INTEGER PRIMARY KEY,
    session_id           TEXT    NOT NULL UNIQUE,
    tenant_id            INTEGER NOT NULL REFERENCES tenants (id),
    customer_id          INTEGER REFERENCES customers (id),
    direction            TEXT    NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    call_sid             TEXT    UNIQUE,
    parent_call_sid      TEXT,
    from_number          TEXT,
    to_number            TEXT,
    agent_type           TEXT,
    status               TEXT    NOT NULL DEFAULT 'queued',
    status_seq           INTEGER NOT NULL DEFAULT -1,
    started_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    answered_at          TEXT,
    ended_at             TEXT,
    duration_s           INTEGER,
    sip_response_code    INTEGER,
    next_action          TEXT,
    transfer_reason      TEXT,
    transfer_attempt     INTEGER NOT NULL DEFAULT 0,
    transfer_target      TEXT,
    transfer_result      TEXT,
    recording_sid        TEXT,
    recording_url        TEXT,
    recording_duration_s INTEGER,
    amd_result           TEXT,
    conversation_id      TEXT,
    summary              TEXT,
    error_code           INTEGER,
    error_message        TEXT,
    idempotency_key      TEXT,
    idempotent_response  TEXT,
    updated_at           TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX calls_tenant_started ON calls (tenant_id, started_at DESC);
CREATE INDEX calls_live ON calls (tenant_id) WHERE ended_at IS NULL;
CREATE UNIQUE INDEX calls_idempotency ON calls (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Append-only timeline of a call; detail is a JSON object.
CREATE TABLE call_events (
    id      INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    type    TEXT    NOT NULL,
    detail  TEXT
);
CREATE INDEX call_events_call ON call_events (call_id, id);

CREATE TABLE transcripts (
    id      INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    role    TEXT    NOT NULL CHECK (role IN ('caller', 'agent', 'system')),
    text    TEXT    NOT NULL,
    at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX transcripts_call ON transcripts (call_id, id);

CREATE TABLE bookings (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    call_id     INTEGER REFERENCES calls (id),
    customer_id INTEGER REFERENCES customers (id),
    name        TEXT    NOT NULL,
    date        TEXT    NOT NULL,
    time        TEXT    NOT NULL,
    notes       TEXT,
    status      TEXT    NOT NULL DEFAULT 'requested',
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX bookings_tenant ON bookings (tenant_id, created_at);

CREATE TABLE tickets (
    id          INTEGER PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    call_id     INTEGER REFERENCES calls (id),
    customer_id INTEGER REFERENCES customers (id),
    summary     TEXT    NOT NULL,
    priority    TEXT    NOT NULL DEFAULT 'normal' CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status      TEXT    NOT NULL DEFAULT 'open',
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX tickets_tenant ON tickets (tenant_id, created_at);
