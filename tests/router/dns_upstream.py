"""A tiny upstream DNS server for the router's DNS tests: ``python dns_upstream.py ADDR PORT``.

Answers every A query with 192.0.2.1 (TTL 60), over UDP, until killed.
"""

from __future__ import annotations

import socket
import sys

import dns.message
import dns.rrset


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((sys.argv[1], int(sys.argv[2])))
    print("ready", flush=True)
    while True:
        wire, source = sock.recvfrom(65535)
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            continue
        response = dns.message.make_response(query)
        response.answer.append(
            dns.rrset.from_text(query.question[0].name, 60, "IN", "A", "192.0.2.1")
        )
        sock.sendto(response.to_wire(), source)


if __name__ == "__main__":
    main()
