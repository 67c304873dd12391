"""Live inspection of a datapath: ``odpctl watch`` and the shell's toolbar.

The package keeps what is measured apart from how it is shown, so that the
rate arithmetic is tested on synthetic samples and every face (a live
terminal table, lines for a pipe, JSON lines, the shell's toolbar) shows the
same numbers:

``tracker``   counters between samples: rates, new and leaving items (generic)
``frames``    what one refresh of each view holds: flows, ports, datapath stats
``sampler``   reading samples from a `Dpif`; the refresh clock
``live``      rich renderables and the full-screen loop for a terminal
``lines``     one line (or one JSON object) per event, for pipes
``keys``      single-key commands while a live view runs (sort, reverse, quit)
``summary``   a one-line, tcpdump-like summary of a packet from its flow key
``owners``    who owns a netlink port id (is an upcall PID a live socket?)
``tap``       receiving a datapath's upcalls by borrowing its upcall PIDs
``mirror``    the router's upcall mirror: a JSON-lines subscription (interface)
"""
