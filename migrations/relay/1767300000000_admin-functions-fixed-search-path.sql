-- Up Migration

-- The functions an administrator calls (relay.watch, unwatch, allow, revoke), those they call, and
-- the trigger that announces their changes ran with the caller's search_path. PostgreSQL picks a
-- function or operator by how well its argument types match before it looks at the path's order,
-- so a function of a closer type in a schema on that path wins over pg_catalog's: format(text,
-- regclass) over format(text, VARIADIC "any"), an operator = (oid, regclass) over oid = oid,
-- pg_notify(text, name) over pg_notify(text, text). Whoever could create in a schema on the
-- administrator's path (PUBLIC may create in public up to PostgreSQL 14, and in any database
-- upgraded from it) ran code of its own as the administrator, often a superuser, each time they
-- watched a table or changed a grant (found by a review helper). With the path fixed to
-- pg_catalog, these functions see only the catalog's functions and operators and the relay's, which
-- they name with their schema; table names in their messages now come schema-qualified.
--
-- The tables' names that the administrator passes are still resolved with their own path: a
-- regclass argument is read before the function runs. relay.pick and relay.update_change keep the
-- caller's path: they are inlined into the queries of the functions that call them (a fixed path
-- would stop that), and every one of those has its path fixed.
alter function relay.watch(regclass, text, text[]) set search_path = pg_catalog, pg_temp;
alter function relay.unwatch(regclass) set search_path = pg_catalog, pg_temp;
alter function relay.watched_ancestor(regclass) set search_path = pg_catalog, pg_temp;
alter function relay.allow(text, text, jsonb, text[]) set search_path = pg_catalog, pg_temp;
alter function relay.revoke(text, text) set search_path = pg_catalog, pg_temp;
alter function relay.filter_error(jsonb, text, integer) set search_path = pg_catalog, pg_temp;
alter function relay.filter_condition_error(jsonb, text) set search_path = pg_catalog, pg_temp;
alter function relay.filter_value_error(jsonb, text, boolean) set search_path = pg_catalog, pg_temp;
alter function relay.announce_catalog_change() set search_path = pg_catalog, pg_temp;

-- Down Migration

alter function relay.watch(regclass, text, text[]) reset search_path;
alter function relay.unwatch(regclass) reset search_path;
alter function relay.watched_ancestor(regclass) reset search_path;
alter function relay.allow(text, text, jsonb, text[]) reset search_path;
alter function relay.revoke(text, text) reset search_path;
alter function relay.filter_error(jsonb, text, integer) reset search_path;
alter function relay.filter_condition_error(jsonb, text) reset search_path;
alter function relay.filter_value_error(jsonb, text, boolean) reset search_path;
alter function relay.announce_catalog_change() reset search_path;
