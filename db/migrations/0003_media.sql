-- The audio bridge: where a call's recording file is, and its stream's counters.
ALTER TABLE calls ADD COLUMN recording_path TEXT;
ALTER TABLE calls ADD COLUMN stream_sid TEXT;
