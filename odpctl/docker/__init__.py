"""Docker's remote network and IPAM driver: ``docker network create -d odpctl``.

A thin adapter over the router's control socket, served as Docker's plugin
protocol (JSON over HTTP on a unix socket under /run/docker/plugins).  The
IPAM driver hands out the router's IPAM addresses; the network driver asks
the router to attach each joining sandbox.
"""
