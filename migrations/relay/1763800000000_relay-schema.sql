-- Up Migration
create schema if not exists relay;
-- Down Migration
