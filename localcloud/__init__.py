"""A local AWS for the swarm lifecycle functions: moto plus a fidelity layer and real hosts."""
