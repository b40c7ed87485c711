-- A transaction's buyer is one of its own customer's buyers (docs/generate.md):
-- the composite key replaces the plain buyer foreign key, so the rule costs
-- no extra check per row. A null buyer_id (no saved profile) is still allowed.
alter table buyers add constraint buyers_id_customer_key unique (id, customer_id);
alter table transactions drop constraint if exists transactions_buyer_id_fkey;
alter table transactions add constraint transactions_buyer_of_customer
  foreign key (buyer_id, customer_id) references buyers (id, customer_id);
