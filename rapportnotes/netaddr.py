"""The caller's network address, as the rate limiter and the audit log see it."""

from flask import request


def client_address() -> str:
    """Return the peer address. Behind a proxy, wrap the app in ``ProxyFix`` so it is the client's."""
    return request.remote_addr or "unknown"
