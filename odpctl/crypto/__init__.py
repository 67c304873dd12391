"""Data-plane encryption: the keys of each mesh connection put to work on the wire.

With a mesh password every connection's handshake yields a session key that both
ends share (`OverlayConnectionParams.session_key`).  From it each direction of the
connection gets keys of its own (`keys`): for kernel IPsec ESP on the fast path,
and for sealing the userspace fallback's datagrams.
"""
