"""The router's local control socket: JSON lines over a root-only unix socket.

One request per line, ``{"cmd": "status"|"peers"|"connect"|"forget", ...}``;
one reply per line, ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error": {"message", "hint", "exit_code", "kind"}}``.  The server is the
router's (and the bare mesh node's); the client is the faces'.
"""
