-- The warehouse: every event once (realtime_events), and a small star schema
-- for history and analysis (fact_sales, dim_product, dim_customer). Written
-- only by `deno task consume` (docs/consume.md). Money is integer cents.

-- One row per transaction and per behaviour event; a behaviour event read on
-- user_behavior and again on searches or cart_events is stored once.
create table if not exists realtime_events (
  event_id text primary key,
  event_type text not null,
  customer_id bigint not null,
  "timestamp" timestamptz not null,
  processed_at timestamptz not null default now(),
  source_topic text not null,
  source_partition integer not null,
  source_offset bigint not null,
  payload jsonb not null
);
-- The dashboard's "recent events" (by arrival, ties by event_id; a whole batch
-- shares one processed_at), by event time, and counts by type over time.
create index if not exists realtime_events_processed on realtime_events (processed_at desc, event_id);
create index if not exists realtime_events_time on realtime_events ("timestamp" desc);
create index if not exists realtime_events_type on realtime_events (event_type, "timestamp");

-- The latest name, category and price seen for a product, by event time.
create table if not exists dim_product (
  product_id bigint primary key,
  name text not null,
  category text not null,
  last_unit_price_cents bigint not null,
  price_seen_at timestamptz not null,
  updated_at timestamptz not null default now()
);

-- When a customer was first and last seen in any event (event time).
create table if not exists dim_customer (
  customer_id bigint primary key,
  first_seen timestamptz not null,
  last_seen timestamptz not null
);

-- One row per transaction item; detail_id is the shop's transaction_details.id
-- and event_id the item's `ti-<detail_id>` on transaction_items.
create table if not exists fact_sales (
  detail_id bigint primary key,
  event_id text not null,
  transaction_id bigint not null,
  customer_id bigint not null,
  product_id bigint not null,
  category text not null,
  quantity integer not null,
  unit_price_cents bigint not null,
  revenue_cents bigint not null,
  event_time timestamptz not null
);
-- Revenue, units and transactions by hour (and by category and hour) read
-- from the index alone.
create index if not exists fact_sales_time on fact_sales (event_time)
  include (revenue_cents, quantity, transaction_id, category);
create index if not exists fact_sales_category on fact_sales (category, event_time);

-- Transactions stored whose transaction_item events Kafka has not yet
-- acknowledged. A row is added in the same warehouse transaction that stores
-- the transaction and removed once its items are acknowledged, so a crash in
-- between re-sends them on redelivery, and a replay of an already-published
-- transaction sends nothing.
create table if not exists transaction_items_outbox (
  event_id text primary key,
  stored_at timestamptz not null default now()
);

-- Every message the consumer sent to dead_letters, so that a redelivery or a
-- replay does not send (or count) it again. The hash tells a message at a
-- recycled offset (topic deleted and re-created) from the one logged there.
create table if not exists dead_letter_log (
  source_topic text not null,
  source_partition integer not null,
  source_offset bigint not null,
  value_sha256 bytea not null,
  reason text not null,
  failed_at timestamptz not null,
  primary key (source_topic, source_partition, source_offset)
);
