-- The outbox holds one row per warehouse transaction (its stored transactions'
-- event ids as one array) instead of one row per transaction: one insert per
-- flush and one delete once Kafka acknowledged the items, rather than an index
-- entry, a heap row and a delete for each of thousands of transactions. A
-- redelivered batch's stored transaction still owes its items iff an
-- outstanding row lists it. Rows left by the old shape carry over as one row.
create table transaction_items_outbox_batches (
  batch_id bigserial primary key,
  event_ids text[] not null,
  stored_at timestamptz not null default now()
);
insert into transaction_items_outbox_batches (event_ids, stored_at)
select array_agg(event_id order by event_id), min(stored_at)
from transaction_items_outbox
having count(*) > 0;
drop table transaction_items_outbox;
alter table transaction_items_outbox_batches rename to transaction_items_outbox;
alter index transaction_items_outbox_batches_pkey rename to transaction_items_outbox_pkey;
alter sequence transaction_items_outbox_batches_batch_id_seq
  rename to transaction_items_outbox_batch_id_seq;
