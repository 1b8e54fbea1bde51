-- Telephony platforms: which one carried a call, and which one a tenant's outbound calls use.
-- Rows from before this migration were all Twilio's.
ALTER TABLE calls ADD COLUMN platform TEXT NOT NULL DEFAULT 'twilio'
    CHECK (platform IN ('twilio', 'asterisk', 'jambonz'));
-- '' means the DEFAULT_PLATFORM setting.
ALTER TABLE tenants ADD COLUMN platform TEXT NOT NULL DEFAULT ''
    CHECK (platform IN ('', 'twilio', 'asterisk', 'jambonz'));
-- No index for GET /api/calls?platform=: like the status and direction filters, it is checked
-- on the tenant's rows walked newest first, and one more index would cost every call's insert.
