"""How datapaths, ports, flows and router status read: ovs-dpctl text, tables, JSON, units.

Shared by the faces (commands, watch, shell) and the demo; it knows nothing of them.
"""
