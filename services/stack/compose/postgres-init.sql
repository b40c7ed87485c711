-- The three databases of the pipeline (the seed's instashop, crm_db, dwh_db),
-- created on the first start of the compose PostgreSQL. The stages apply
-- their own schemas (migrations/) when they open them.
CREATE DATABASE instashop;
CREATE DATABASE crm_db;
CREATE DATABASE dwh_db;
