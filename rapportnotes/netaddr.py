"""The caller's network address, as the rate limiter and the audit log see it."""

import ipaddress

from flask import request


def client_address() -> str:
    """Return the peer address. Behind a proxy, wrap the app in ``ProxyFix`` so it is the client's.

    With ``TRUSTED_PROXY_HOPS`` set, ``remote_addr`` is the trusted ``X-Forwarded-For`` entry:
    text the proxy (or whoever reaches the app port directly) wrote. Only a real address is kept
    (the audit column holds 64 characters; 300 characters there were a 500 on PostgreSQL)."""
    addr = (request.remote_addr or "").split("%", 1)[0]  # no IPv6 zone id
    try:
        return str(ipaddress.ip_address(addr))
    except ValueError:
        return "unknown"
