"""The routers' mesh: peers, connections, topology gossip and routes.

It knows nothing of the datapath or of the control socket: the router composes them.
"""
