-- Up Migration

-- relay.filter_columns (a recursive walk of a grant's filter, run by check_grant on every
-- relay.allow) is estimated far above jit_above_cost, so a PostgreSQL built with LLVM (Debian's
-- PostgreSQL 15, for one) compiled it on every call: relay.allow took 300 to 450 ms, and a running
-- relay loaded a new grant near the end of the second the contract allows. The walk reads a few
-- keys; compiling it never pays.
alter function relay.filter_columns(jsonb) set jit = off;

-- Down Migration

alter function relay.filter_columns(jsonb) reset jit;
