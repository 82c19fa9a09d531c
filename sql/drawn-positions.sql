-- The highest commit position drawn so far (0 before the first), committed or not.
select case when is_called then last_value else 0 end as drawn from relay.commit_position
