"""One JSON line per request, without bodies, tokens, passwords or query strings."""

from __future__ import annotations

import json
import logging


def test_one_json_line_per_request_and_no_secrets(client, world):
    org = world.org()
    u = world.user(org, "coach", password="marker-password-XYZZY", login=False)
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            from rapportnotes.requestlog import JsonFormatter

            lines.append(JsonFormatter().format(record))

    handler = Capture(level=logging.DEBUG)
    root = logging.getLogger("rapportnotes")
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        tok = client.post("/api/v1/auth/login", json={"email": u.email, "password": u.password}).get_json()
        client.get(
            "/api/v1/contacts?peer_ref=SECRET-QUERY-REF",
            headers={"Authorization": f"Bearer {tok['access_token']}"},
        )
        client.post(
            "/api/v1/auth/login", json={"email": "ghost@example.org", "password": "marker-password-XYZZY"}
        )
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    requests = [json.loads(line) for line in lines if '"rapportnotes.request"' in line]
    assert len(requests) == 3
    assert requests[0]["route"] == "/api/v1/auth/login" and requests[0]["status"] == 200
    assert requests[0]["user_id"] == u.id  # who signed in, though no token came with the request
    assert requests[2]["status"] == 401 and requests[2]["user_id"] is None
    unknown = [json.loads(line) for line in lines if "login failed for unknown email" in line]
    assert [e["request_id"] for e in unknown] == [requests[2]["request_id"]]  # ties it to its request
    assert requests[1]["user_id"] == u.id and requests[1]["request_id"]
    text = "\n".join(lines)
    for secret in ("marker-password-XYZZY", tok["access_token"], tok["refresh_token"], "SECRET-QUERY-REF"):
        assert secret not in text


def test_the_rate_limiter_logs_its_outages_but_never_a_login_email(app, client):
    """Flask-Limiter's lines reach the JSON log so an operator hears that Redis failed; its INFO
    line for a breached limit names the key, a login's email, and stays out."""
    from rapportnotes.requestlog import configure_logging

    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    limits = logging.getLogger("flask-limiter")
    assert any(getattr(h, "_rapportnotes", False) for h in limits.handlers)
    handler = Capture(level=logging.DEBUG)
    limits.addHandler(handler)
    configure_logging("INFO")  # the production default, whatever the tests run with
    try:
        for _ in range(7):
            r = client.post("/api/v1/auth/login",
                            json={"email": "marker-email@example.org", "password": "wrong-password-1"})
        assert r.status_code == 429
        limits.warning("Rate limit storage unreachable - falling back to in-memory storage")
    finally:
        limits.removeHandler(handler)
        configure_logging(app.config["LOG_LEVEL"])
    assert not any("marker-email" in line for line in lines), lines
    assert any("falling back" in line for line in lines)
