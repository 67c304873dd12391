"""Live inspection of a datapath: ``odpctl watch`` and the shell's toolbar.

The package keeps what is measured apart from how it is shown, so that the
rate arithmetic is tested on synthetic samples and every face (a live
terminal table, lines for a pipe, JSON lines, the shell's toolbar) shows the
same numbers:

``tracker``   counters between samples: rates, new and leaving items (generic)
``frames``    what one refresh of each view holds: flows, ports, datapath stats
``sampler``   reading samples from a `Dpif`; the refresh clock
``views``     rich renderables of frames, and the views the live loop runs
``live``      the full-screen loop for a terminal (rich.live)
``keys``      single keys while a live view runs (sort, reverse, quit)
``lines``     one line (or one JSON object) per event, for pipes
``units``     rates and times as people read them
``summary``   a one-line, tcpdump-like summary of a packet from its flow key
``sources``   where `watch upcalls` gets upcalls: the router's mirror, or the tap
``owners``    who owns a netlink port id (is an upcall PID a live socket?)
``tap``       receiving a datapath's upcalls by borrowing its upcall PIDs
``mirror``    the router's upcall mirror: a JSON-lines subscription (interface)
"""
