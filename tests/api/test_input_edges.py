"""Inputs that passed validation and then broke later (found by an adversarial pass over HTTP).

Each one once answered 500, or stored what it should have refused. Every case runs on both
databases: PostgreSQL's varchar limits and NUL refusal made several of them differ.
"""

from __future__ import annotations

import base64
import io
import json
import uuid

import pytest

from rapportnotes.models import Behaviour, Contact, User
from tests.support.problems import assert_problem

API = "/api/v1"
CONTACT = {"occurred_at": "2026-11-01T10:00:00Z", "duration_minutes": 5, "modality": "phone"}


def _count(world, model, **where) -> int:
    return world.run(lambda s: s.query(model).filter_by(**where).count())


def _cursor(values) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# --- a final newline passed "$"-anchored patterns ---------------------------------------------


@pytest.mark.parametrize("body", [
    {"code": "zz_nl\n", "category": "support"},
    {"code": "b" * 64 + "\n", "category": "support"},
    {"code": "zz_ok", "category": "cat\n"},
    {"code": "zz_ok", "category": "c" * 64 + "\n"},
])
def test_a_behaviour_code_or_category_with_a_final_newline_is_refused(client, cast, world, body):
    full = {"label": "x", "polarity": "supportive", **body}
    field = "code" if body["code"] != "zz_ok" else "category"
    assert_problem(client.post(f"{API}/behaviours", json=full, headers=cast.admin.headers), 422, field)
    assert _count(world, Behaviour, organisation_id=uuid.UUID(cast.org)) == 16  # the defaults only
    r = client.patch(f"{API}/behaviours/hope", json={"category": body["category"]},
                     headers=cast.admin.headers)
    if field == "category":
        assert_problem(r, 422, "category")


def test_a_created_behaviour_is_located_by_its_code(client, cast):
    body = {"code": "zz_new", "label": "New", "category": "support", "polarity": "supportive"}
    r = client.post(f"{API}/behaviours", json=body, headers=cast.admin.headers)
    assert r.status_code == 201
    assert r.headers["Location"].endswith("/api/v1/behaviours/zz_new")
    for user in (cast.admin, cast.coach):  # everyone in the organisation can follow it
        got = client.get(r.headers["Location"], headers=user.headers)
        assert got.status_code == 200 and got.get_json() == r.get_json()
    assert_problem(client.get(r.headers["Location"], headers=cast.admin_b.headers), 404)  # not theirs
    assert_problem(client.get(f"{API}/behaviours/never_made", headers=cast.coach.headers), 404)


WRITES = [
    ("post", "/auth/login", None), ("post", "/me/password", "coach"), ("post", "/users", "admin"),
    ("patch", "/users/{coach}", "admin"), ("post", "/teams", "admin"), ("patch", "/teams/{team}", "admin"),
    ("put", "/teams/{team}/members/{lone}", "admin"), ("delete", "/teams/{team}/members/{coach2}", "admin"),
    ("post", "/behaviours", "admin"), ("patch", "/behaviours/hope", "admin"), ("post", "/contacts", "coach"),
    ("post", "/auth/logout", "coach"), ("post", "/auth/refresh", "refresh"),
    ("patch", "/contacts/{contact}", "coach"), ("delete", "/contacts/{contact}", "coach"),
]


@pytest.mark.parametrize(("method", "path", "role"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
@pytest.mark.parametrize("query", ["?bogus=1", "?limit=1&limit=2"])
def test_writes_take_no_query_parameters(client, cast, world, method, path, role, query):
    """Found by a pass over openapi.yaml's conventions: writes ignored unknown parameters."""
    contact = client.post(f"{API}/contacts", json=dict(CONTACT, peer_ref="P-1"), headers=cast.coach.headers)
    url = API + path.format(coach=cast.coach.id, team=cast.team, lone=cast.lone_coach.id,
                            coach2=cast.coach2.id, contact=contact.get_json()["id"]) + query
    headers = ({"Authorization": f"Bearer {cast.coach.refresh_token}"} if role == "refresh"
               else getattr(cast, role).headers if role else {})
    before = world.audit_actions(cast.org)
    r = getattr(client, method)(url, json={}, headers=headers)
    assert_problem(r, 422)
    assert world.audit_actions(cast.org) == before  # nothing done
    if role:  # a refused caller still hears that first
        assert_problem(getattr(client, method)(url, json={}), 401)


@pytest.mark.parametrize("code", ["%00", "a" * 65, "UPPER", "%0A"])
def test_a_path_that_cannot_be_a_behaviour_code_is_404(client, cast, code):
    r = client.patch(f"{API}/behaviours/{code}", json={"label": "x"}, headers=cast.admin.headers)
    assert_problem(r, 404)


@pytest.mark.parametrize("key", [None, "edge-key-1"])
@pytest.mark.parametrize("peer_ref", ["PEER-NL\n", "A" * 64 + "\n"])
def test_a_peer_ref_with_a_final_newline_is_refused(client, cast, world, peer_ref, key):
    headers = dict(cast.coach.headers, **({"Idempotency-Key": key} if key else {}))
    r = client.post(f"{API}/contacts", json=dict(CONTACT, peer_ref=peer_ref), headers=headers)
    assert_problem(r, 422, "peer_ref")
    assert _count(world, Contact) == 0


def test_a_peer_ref_edit_with_a_final_newline_is_refused(client, cast):
    r = client.post(f"{API}/contacts", json=dict(CONTACT, peer_ref="P-1"), headers=cast.coach.headers)
    url = r.headers["Location"]
    assert_problem(client.patch(url, json={"peer_ref": "NEW\n"}, headers=cast.coach.headers), 422, "peer_ref")
    assert client.get(url, headers=cast.coach.headers).get_json()["peer_ref"] == "P-1"


# --- lone surrogates ------------------------------------------------------------------------------


def test_a_password_with_a_lone_surrogate_is_just_a_wrong_password(client, cast):
    raw = json.dumps({"email": cast.coach.email, "password": "\ud800abc"}).encode()
    r = client.post(f"{API}/auth/login", data=raw, content_type="application/json")
    assert_problem(r, 401)
    raw = json.dumps({"current_password": "\ud800", "new_password": "a-brand-new-password"}).encode()
    r = client.post(f"{API}/me/password", data=raw, content_type="application/json",
                    headers=cast.coach.headers)
    assert_problem(r, 401)


def test_an_idempotent_create_with_a_lone_surrogate_names_the_field(client, cast, world):
    raw = json.dumps(dict(CONTACT, peer_ref="P-1", notes="\ud800")).encode()
    headers = dict(cast.coach.headers, **{"Idempotency-Key": "edge-key-2"})
    r = client.post(f"{API}/contacts", data=raw, content_type="application/json", headers=headers)
    assert_problem(r, 422, "notes")
    assert _count(world, Contact) == 0


# --- the ends of the calendar -----------------------------------------------------------------------


@pytest.mark.parametrize("query", ["to=9999-12-31", "from=9999-12-31", "to=9999-12-31T23:59:59.999999Z"])
def test_audit_bounds_at_the_last_day_are_a_422(client, cast, query):
    assert_problem(client.get(f"{API}/audit?{query}", headers=cast.admin.headers), 422)


@pytest.mark.parametrize("query", ["from=0001-01-01", "to=0001-01-01"])
def test_audit_bounds_before_the_first_instant_are_a_422(client, world, query):
    org = world.org(timezone="Asia/Tokyo")  # its first day starts before year 1 in UTC
    admin = world.user(org, "admin")
    assert_problem(client.get(f"{API}/audit?{query}", headers=admin.headers), 422)


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
                                "2025-01-01T00:00:00", "2025-01-01"])
def test_an_audit_cursor_that_we_did_not_make_is_a_422(client, cast, at):
    url = f"{API}/audit?cursor={_cursor([at, str(uuid.uuid4())])}"
    assert_problem(client.get(url, headers=cast.admin.headers), 422, "cursor")


@pytest.mark.parametrize("path", ["/contacts?from=2026-W01-1", "/contacts?to=2026-W01",
                                  "/audit?from=2026-W48-1"])
def test_week_dates_are_not_dates(client, cast, path):
    assert_problem(client.get(f"{API}{path}", headers=cast.admin.headers), 422)


def test_week_dates_are_not_report_dates(client, cast):
    url = f"{API}/coaches/{cast.coach.id}/report?from=2026-W01-1&to=2026-W02-1"
    assert_problem(client.get(url, headers=cast.coach.headers), 422)


@pytest.mark.parametrize("at", ["2026-11-01T10:00:00+00:99", "2026-11-01T10:00:00+24:00",
                                "2026-11-01T10:00:00Z\n"])
def test_offsets_out_of_range_are_refused(client, cast, world, at):
    r = client.post(f"{API}/contacts", json=dict(CONTACT, peer_ref="P-1", occurred_at=at),
                    headers=cast.coach.headers)
    assert_problem(r, 422, "occurred_at")
    assert _count(world, Contact) == 0


def test_more_than_six_fraction_digits_are_accepted(client, cast):
    at = "2026-11-01T10:00:00.1234567891Z"  # RFC 3339 sets no limit; we keep microseconds
    r = client.post(f"{API}/contacts", json=dict(CONTACT, peer_ref="P-1", occurred_at=at),
                    headers=cast.coach.headers)
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["occurred_at"] == "2026-11-01T10:00:00.123456Z"


# --- cursors go to the database as they are ------------------------------------------------------------


@pytest.mark.parametrize("path,arity", [("/users", 1), ("/teams", 2)])
@pytest.mark.parametrize("bad", ["\u0000", "\ud800", "x" * 600, "a\nb"])
def test_a_cursor_holding_nul_surrogates_or_control_characters_is_a_422(client, cast, path, arity, bad):
    values = [bad] + [str(uuid.uuid4())] * (arity - 1)
    r = client.get(f"{API}{path}?cursor={_cursor(values)}", headers=cast.admin.headers)
    assert_problem(r, 422, "cursor")


# --- emails that grow when lower-cased ------------------------------------------------------------------


def test_an_email_longer_than_the_limit_once_lower_cased_is_refused(client, cast, world):
    email = "\u0130" * 125 + "@ex.org"  # 132 characters; 257 lower-cased
    body = {"email": email, "display_name": "x", "role": "coach", "password": "a-long-password-1"}
    assert_problem(client.post(f"{API}/users", json=body, headers=cast.admin.headers), 422, "email")
    assert _count(world, User, organisation_id=uuid.UUID(cast.org)) == 6


# --- bodies ----------------------------------------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_a_413_not_cut_short(client, cast, world):
    body = json.dumps(dict(CONTACT, peer_ref="P-1")).encode() + b" " * (2 * 1024 * 1024)
    r = client.post(f"{API}/contacts", input_stream=io.BytesIO(body),
                    headers=dict(cast.coach.headers, **{"Content-Type": "application/json",
                                                        "Transfer-Encoding": "chunked"}),
                    environ_overrides={"wsgi.input_terminated": True})  # as gunicorn, decoded
    assert_problem(r, 413)
    assert _count(world, Contact) == 0


def test_a_number_with_too_many_digits_says_so_in_our_words(client, cast):
    raw = b'{"peer_ref": "P-1", "duration_minutes": ' + b"9" * 5000 + b"}"
    r = client.post(f"{API}/contacts", data=raw, content_type="application/json", headers=cast.coach.headers)
    body = assert_problem(r, 400)
    assert "sys." not in body["detail"] and "too many digits" in body["detail"]


@pytest.mark.parametrize("path", ["/me?x=1", "/users/{admin}?x=1", "/teams/{team}?x=1"])
def test_unknown_query_parameters_are_a_422_everywhere(client, cast, path):
    url = API + path.format(admin=cast.admin.id, team=cast.team)
    assert_problem(client.get(url, headers=cast.admin.headers), 422, "x")


def test_a_long_list_is_refused_before_its_items_are_read(client, cast, world):
    body = dict(CONTACT, peer_ref="P-1", behaviours=[1] * 100_000)
    r = client.post(f"{API}/contacts", json=body, headers=cast.coach.headers)
    problem = assert_problem(r, 422, "behaviours")
    assert len(r.get_data()) < 2_000, problem  # one message, not one per item
    assert _count(world, Contact) == 0


def test_the_error_list_is_capped(client, cast):
    body = dict(CONTACT, peer_ref="P-1", **{f"unknown_{i}": 1 for i in range(5_000)})
    r = client.post(f"{API}/contacts", json=body, headers=cast.coach.headers)
    errors = assert_problem(r, 422, "_more")["errors"]
    assert len(errors) == 101 and errors["_more"] == ["4900 more fields have errors."]


# --- a keyed create on PostgreSQL trusted a row count SQLAlchemy had not kept -------------------


@pytest.mark.parametrize("codes", [["no_such_code"], ["hope", "retired_one"]])
def test_a_keyed_create_with_a_code_it_cannot_use_is_a_422_and_stores_nothing(client, cast, world, codes):
    """Found by a race pass: with an Idempotency-Key the PostgreSQL statement stored nothing, but
    its row count read -1 (not kept by SQLAlchemy), so the request answered 201, recorded the
    idempotency key as done, and every retry replayed a contact that did not exist."""
    client.post(f"{API}/behaviours", json={"code": "retired_one", "label": "R", "category": "support",
                                           "polarity": "supportive"}, headers=cast.admin.headers)
    client.patch(f"{API}/behaviours/retired_one", json={"active": False}, headers=cast.admin.headers)
    headers = dict(cast.coach.headers, **{"Idempotency-Key": f"edge-{'-'.join(codes)}"})
    body = dict(CONTACT, peer_ref="P-1", behaviours=codes)
    for _ in range(2):  # and a retry is no different
        assert_problem(client.post(f"{API}/contacts", json=body, headers=headers), 422, "behaviours")
    assert _count(world, Contact) == 0
    ok = client.post(f"{API}/contacts", json=dict(body, behaviours=["hope"]),
                     headers=dict(headers, **{"Idempotency-Key": "edge-good"}))
    assert ok.status_code == 201
    assert client.get(ok.headers["Location"], headers=cast.coach.headers).status_code == 200
