-- Indexes nothing in the pipeline reads, dropped for the load's sake: every
-- event paid for two extra index entries and every sale for one. The dashboard
-- reads the latest events by (processed_at desc, event_id) and revenue, units
-- and transactions by hour (and by category, which the include carries) from
-- fact_sales_time alone. On the same 100,000 rows a raw COPY into
-- realtime_events took about 1,040 ms of backend CPU with the four indexes and
-- 770 ms with two (docs/consume.md). Ad-hoc analysis by event time or type
-- can add its own: `create index on realtime_events ("timestamp")`.
drop index if exists realtime_events_time;
drop index if exists realtime_events_type;
drop index if exists fact_sales_category;
