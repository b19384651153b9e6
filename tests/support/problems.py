"""Assertions for problem+json error responses."""

from __future__ import annotations

from typing import Any


def assert_problem(resp: Any, status: int, *fields: str) -> dict[str, Any]:
    """The response is an RFC 9457 problem with ``status``; ``fields`` must appear in errors."""
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "application/problem+json", resp.mimetype
    body = resp.get_json()
    for key in ("type", "title", "status", "detail"):
        assert key in body, body
    assert body["status"] == status
    errors = body.get("errors", {})
    for f in fields:  # a field, or an item of it ("behaviours.0")
        assert any(k == f or k.startswith(f + ".") for k in errors), (f, body)
    if status == 401:
        assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
    return body
