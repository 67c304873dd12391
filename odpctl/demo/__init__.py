"""The 3-host overlay demo (`odpctl demo`) and the namespaces it, the router tests and the
benchmarks run in.  Needs pyroute2 (the ``demo`` extra)."""
