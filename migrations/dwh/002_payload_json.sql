-- realtime_events.payload as json (the message's text, validated) rather than
-- jsonb. Building jsonb's binary form was the largest single PostgreSQL cost
-- of the warehouse load (docs/benchmarks.md: about 17% of the backend's CPU
-- for the realtime_events insert); nothing queries inside the payload (the
-- dashboard reads it whole, and `->>` works on json too). On an existing
-- warehouse this rewrites the table once, under an exclusive lock.
alter table realtime_events alter column payload type json using payload::json;
