"""A JSON body is UTF-8 (RFC 8259 section 8.1), whatever the Content-Type's charset says.

Python's ``json.loads`` given bytes also detects UTF-16 and UTF-32 and decodes them, so such a
body was taken (a contact stored, a login answered) while a Latin-1 one was a 400 "not UTF-8".
A leading UTF-8 byte order mark stays accepted: RFC 8259 lets a parser ignore it.
"""

from __future__ import annotations

import json

import pytest

from rapportnotes.models import Contact
from tests.support.problems import assert_problem

API = "/api/v1"
CONTACT = {"peer_ref": "P-1", "occurred_at": "2026-11-01T10:00:00Z", "duration_minutes": 5,
           "modality": "phone"}
ENCODINGS = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"]


@pytest.mark.parametrize("charset", ["", "; charset=utf-16"])
@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_utf16_or_utf32_body_is_a_400_and_stores_nothing(client, cast, world, encoding, charset):
    for key in (None, "enc-key-1"):
        headers = dict(cast.coach.headers, **({"Idempotency-Key": key} if key else {}))
        r = client.post(f"{API}/contacts", data=json.dumps(CONTACT).encode(encoding),
                        content_type="application/json" + charset, headers=headers)
        assert_problem(r, 400)
    assert world.count(Contact) == 0
    body = {"display_name": "Renamed"}
    r = client.patch(f"{API}/users/{cast.coach.id}", data=json.dumps(body).encode(encoding),
                     content_type="application/json" + charset, headers=cast.admin.headers)
    assert_problem(r, 400)
    login = {"email": cast.coach.email, "password": cast.coach.password}
    r = client.post(f"{API}/auth/login", data=json.dumps(login).encode(encoding),
                    content_type="application/json" + charset)
    assert_problem(r, 400)


def test_a_utf8_body_with_a_byte_order_mark_is_taken(client, cast, world):
    r = client.post(f"{API}/contacts", data=b"\xef\xbb\xbf" + json.dumps(CONTACT).encode(),
                    content_type="application/json", headers=cast.coach.headers)
    assert r.status_code == 201, r.get_json()
    assert world.count(Contact) == 1
