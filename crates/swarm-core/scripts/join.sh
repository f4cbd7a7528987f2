# Joins this instance to the swarm through MANAGER_ADDR. The token is read here, on the
# instance, from Parameter Store; it is never printed.
# In: MANAGER_ADDR, ADVERTISE_ADDR, TOKEN_PARAMETER, SHARED_STORAGE (empty: none). Exit 3: token
# missing or rejected; 10: the shared storage is not mounted.
join_swarm "$MANAGER_ADDR" "$ADVERTISE_ADDR"
