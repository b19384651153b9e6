"""Bad bodies and unknown routes: problem+json with the right status, and nothing stored."""

from __future__ import annotations

import pytest

from rapportnotes.models import Team
from tests.conftest import make_app
from tests.support.problems import assert_problem

URL = "/api/v1/teams"


def send(client, admin, data, content_type="application/json"):
    return client.post(URL, data=data, content_type=content_type, headers=admin.headers)


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b'{"name": "a", "name": "b"}',
        b'{"name": NaN}',
        b'{"name": Infinity}',
        b'{"name": -Infinity}',
        b'{"n": 1e999}',
        b"[" * 10000 + b"]" * 10000,
        b'{"a":' * 50 + b"1" + b"}" * 50,
        b"\xff\xfe{}",
        b'{"name": "x"} trailing',
    ],
)
def test_malformed_json_is_400(client, cast, world, raw):
    body = assert_problem(send(client, cast.admin, raw), 400)
    assert body["request_id"]
    assert world.count(Team) == 3


def test_not_json_is_415(client, cast, world):
    assert_problem(send(client, cast.admin, b"name=x", "application/x-www-form-urlencoded"), 415)
    assert_problem(send(client, cast.admin, b'{"name": "x"}', "text/plain"), 415)
    assert world.count(Team) == 3


def test_body_over_one_mebibyte_is_413(client, cast, world):
    big = b'{"name": "' + b"x" * (1024 * 1024) + b'"}'
    assert_problem(send(client, cast.admin, big), 413)
    assert world.count(Team) == 3


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"[]", "_body"),
        (b'"x"', "_body"),
        (b'{"name": 5}', "name"),
        (b'{"nme": "x"}', "nme"),
        (b'{"name": "a\\u0000b"}', "name"),
        (b'{"name": "bell\\u0007"}', "name"),
        (b'{"name": "\\ud800"}', "name"),
        (b'{"name": ""}', "name"),
        ('{"name": "' + "x" * 201 + '"}', "name"),
    ],
)
def test_invalid_fields_are_422(client, cast, world, raw, field):
    assert_problem(send(client, cast.admin, raw), 422, field)
    assert world.count(Team) == 3


def test_unknown_route_and_wrong_method(client, cast):
    assert_problem(client.get("/api/v1/nope", headers=cast.admin.headers), 404)
    r = client.delete("/api/v1/me", headers=cast.admin.headers)
    assert_problem(r, 405)
    assert "OPTIONS" not in r.headers["Allow"] and "GET" in r.headers["Allow"]


@pytest.mark.parametrize("path", ["/api/v1//contacts", "/api/v1/contacts//", "//api/v1/me",
                                  "/api/v1/teams//report"])
def test_doubled_slashes_are_unknown_paths_not_redirects(app, cast, path):
    from flask.testing import FlaskClient

    plain = FlaskClient(app, app.response_class)  # the validating client cannot match a redirect
    for method in ("GET", "POST"):
        r = plain.open(path, method=method, headers={**cast.coach.headers, "Host": "evil.example"})
        assert_problem(r, 404)
        assert "Location" not in r.headers


def test_unexpected_errors_are_bare_500_problems(database_url):
    app = make_app(database_url, TESTING=False, PROPAGATE_EXCEPTIONS=False)

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals: postgresql://user:pw@host/db")

    r = app.test_client().get("/boom", headers={"X-Request-ID": "req-123"})
    body = assert_problem(r, 500)
    text = r.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "postgresql" not in text
    assert body["request_id"] == "req-123"


def test_security_headers_on_every_api_response(client, cast):
    for r in (
        client.get("/api/v1/me", headers=cast.admin.headers),
        client.get("/api/v1/me"),
        client.get("/api/v1/nope"),
    ):
        assert r.headers["Cache-Control"] == "no-store"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Request-ID"]


def test_request_id_is_echoed_when_safe_and_replaced_otherwise(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    for bad in ("has space", "x" * 129, "semi;colon"):
        rid = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert rid != bad and len(rid) == 32


def test_a_content_encoded_body_is_415(client, cast, world):
    """The body is never decoded: a gzip body is not "invalid JSON", and a body labelled gzip
    that is not must not be stored as if it were plain."""
    import gzip

    plain = b'{"name": "Encoded"}'
    for coding, data in (("gzip", gzip.compress(plain)), ("gzip", plain), ("br", plain)):
        r = client.post(URL, data=data, content_type="application/json",
                        headers={**cast.admin.headers, "Content-Encoding": coding})
        assert_problem(r, 415)
        assert r.headers["Accept-Encoding"] == "identity"
    assert world.count(Team) == 3
    r = client.post(URL, data=plain, content_type="application/json",
                    headers={**cast.admin.headers, "Content-Encoding": "identity"})
    assert r.status_code == 201
