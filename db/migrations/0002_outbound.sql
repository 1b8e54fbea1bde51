-- Outbound calls: what to do when a machine answers, and per-agent instructions.
-- amd_action: hangup, or message (play amd_message after the beep, then hang up).
ALTER TABLE tenants ADD COLUMN amd_action TEXT CHECK (amd_action IN ('hangup', 'message'));
ALTER TABLE tenants ADD COLUMN amd_message TEXT;
-- JSON object: agent_type -> instructions for the AI agent of an outbound call.
ALTER TABLE tenants ADD COLUMN agent_instructions TEXT;
