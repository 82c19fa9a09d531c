-- Every grant, in the order they were made.
select topic, role, filter, columns
  from relay.grants
 order by id
