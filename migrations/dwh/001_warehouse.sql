-- The warehouse: every event once (realtime_events), and a small star schema
-- for history and analysis. Money is integer cents.

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
create index if not exists realtime_events_processed on realtime_events (processed_at desc);
create index if not exists realtime_events_time on realtime_events ("timestamp" desc);
create index if not exists realtime_events_type on realtime_events (event_type);

create table if not exists dim_product (
  product_id bigint primary key,
  name text not null,
  category text not null,
  last_unit_price_cents integer not null,
  updated_at timestamptz not null default now()
);

create table if not exists dim_customer (
  customer_id bigint primary key,
  first_seen timestamptz not null,
  last_seen timestamptz not null
);

-- One row per transaction item; detail_id is the shop's transaction_details.id.
create table if not exists fact_sales (
  detail_id bigint primary key,
  event_id text not null unique,
  transaction_id bigint not null,
  customer_id bigint not null,
  product_id bigint not null,
  category text not null,
  quantity integer not null,
  unit_price_cents integer not null,
  revenue_cents bigint not null,
  event_time timestamptz not null
);
create index if not exists fact_sales_time on fact_sales (event_time);
create index if not exists fact_sales_category on fact_sales (category, event_time);
