-- Every grant, in the order they were made. The filter as text: pg's JSON.parse would round its
-- long numbers (src/db/catalog.ts parses it exactly).
select topic, role, filter::text as filter, columns
  from relay.grants
 order by id
