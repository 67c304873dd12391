"""Service discovery: DNS records gossiped across the mesh, and a DNS server.

`records` holds the records and their merge, `gossip` their mesh channel,
`server` the DNS server answering from them, `service` puts them together
for a router (persistence, resolv.conf of the containers).
"""
