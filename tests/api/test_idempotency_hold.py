"""The Idempotency-Key hold (SPEC §8: a duplicate of a request still running is a 409), with real
concurrent requests (threads) on both databases: where the first request is held, what a
duplicate and a later retry get, and what is stored."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from rapportnotes.models import Contact, IdempotencyRecord
from tests.support.callers import make_admin, revoke_token
from tests.support.problems import assert_problem
from tests.support.race import race

URL = "/api/v1/contacts"


def body(**over):
    b = {"peer_ref": "PEER-001", "occurred_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat(),
         "duration_minutes": 30, "modality": "in_person", "behaviours": ["empathy"]}
    b.update(over)
    return b


def _hold(monkeypatch, module, name, *, fail_first=False, none_first=False):
    """Wrap ``module.name``: the first call signals ``inside`` and waits for ``go``."""
    inside, go, calls = threading.Event(), threading.Event(), []
    real = getattr(module, name)

    def held(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 and none_first:
            return None  # "the statement stored nothing": the view retries
        if len(calls) == (2 if none_first else 1):
            inside.set()
            assert go.wait(10)
            if fail_first:
                raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, held)
    return inside, go


def _then(inside, go, request):
    def second(c):
        assert inside.wait(10)
        try:
            return request(c)
        finally:
            go.set()
    return second


@pytest.mark.parametrize("where", ["create_contact", "store", "retry"])
def test_a_duplicate_while_the_first_is_inside_its_transaction_is_409_then_replays(
        app, cast, world, monkeypatch, where):
    from rapportnotes.services import contacts as svc
    from rapportnotes.services import idempotency

    if where == "create_contact":
        inside, go = _hold(monkeypatch, svc, "create_contact")
    elif where == "retry":
        inside, go = _hold(monkeypatch, svc, "create_contact", none_first=True)
    else:  # the contact is inserted (not committed), the record not yet
        inside, go = _hold(monkeypatch, idempotency, "store")
    h = {**cast.coach.headers, "Idempotency-Key": str(uuid.uuid4())}
    b = body()
    first, second = race(app, [lambda c: c.post(URL, json=b, headers=h),
                               _then(inside, go, lambda c: c.post(URL, json=b, headers=h))])
    assert first.status_code == 201, first.get_json()
    assert_problem(second, 409)
    replay = app.test_client().post(URL, json=b, headers=h)
    assert replay.status_code == 201 and replay.get_json() == first.get_json()
    assert world.count(Contact) == 1 and world.count(IdempotencyRecord) == 1


def test_a_first_request_that_fails_leaves_the_key_claimable(app, cast, world, monkeypatch):
    from rapportnotes.services import idempotency

    inside, go = _hold(monkeypatch, idempotency, "store", fail_first=True)
    h = {**cast.coach.headers, "Idempotency-Key": str(uuid.uuid4())}
    first, second = race(app, [lambda c: c.post(URL, json=body(), headers=h),
                               _then(inside, go, lambda c: c.post(URL, json=body(), headers=h))])
    assert first.status_code == 500 and second.status_code == 409
    assert world.count(Contact) == 0
    again = app.test_client().post(URL, json=body(), headers=h)
    assert again.status_code == 201, again.get_json()
    assert world.count(Contact) == 1


@pytest.mark.parametrize("change, status", [(revoke_token, 401), (make_admin, 403)])
def test_a_refused_caller_hears_401_or_403_not_409(app, cast, world, monkeypatch, change, status):
    from rapportnotes.services import contacts as svc

    inside, go = _hold(monkeypatch, svc, "create_contact")
    h = {**cast.coach.headers, "Idempotency-Key": str(uuid.uuid4())}

    def refused(c):
        world.run(lambda s: change(s, cast.coach))
        return c.post(URL, json=body(), headers=h)

    _, second = race(app, [lambda c: c.post(URL, json=body(), headers=h),
                           _then(inside, go, refused)])
    assert second.status_code == status, second.get_json()


def test_different_keys_and_callers_are_not_held(app, cast, world, monkeypatch):
    from rapportnotes.services import contacts as svc

    inside, go = _hold(monkeypatch, svc, "create_contact")
    key = str(uuid.uuid4())

    def others(c):
        return c.post(URL, json=body(), headers={**cast.coach2.headers, "Idempotency-Key": key})

    first, second = race(app, [
        lambda c: c.post(URL, json=body(), headers={**cast.coach.headers, "Idempotency-Key": key}),
        _then(inside, go, others)])
    assert first.status_code == second.status_code == 201


def test_two_retries_after_the_first_finished_both_replay(app, cast, world, monkeypatch):
    """SPEC §5/§8: 409 only while the *first* request runs; once it finished, a retry replays, even
    when another retry of it is being answered at the same moment."""
    from rapportnotes.services import idempotency

    h = {**cast.coach.headers, "Idempotency-Key": str(uuid.uuid4())}
    b = body()
    first = app.test_client().post(URL, json=b, headers=h)
    assert first.status_code == 201
    inside, go = _hold(monkeypatch, idempotency, "lookup")
    r1, r2 = race(app, [lambda c: c.post(URL, json=b, headers=h),
                        _then(inside, go, lambda c: c.post(URL, json=b, headers=h))])
    assert (r1.status_code, r2.status_code) == (201, 201), (r1.get_json(), r2.get_json())
    assert r1.get_json() == r2.get_json() == first.get_json()
    assert world.count(Contact) == 1


def test_a_duplicate_of_a_first_request_reusing_an_expired_key_is_409_without_waiting(
        app, cast, world, monkeypatch):
    """The first request deletes the expired record in its transaction; the held duplicate must
    not wait for that row (PostgreSQL) or the write lock (SQLite): it is a 409 at once."""
    from rapportnotes.services import contacts as svc

    h = {**cast.coach.headers, "Idempotency-Key": str(uuid.uuid4())}
    assert app.test_client().post(URL, json=body(), headers=h).status_code == 201

    def expire(s):
        for rec in s.query(IdempotencyRecord):
            rec.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    world.run(expire)
    inside, go = _hold(monkeypatch, svc, "create_contact")
    b = body(peer_ref="PEER-002")
    first, second = race(app, [lambda c: c.post(URL, json=b, headers=h),
                               _then(inside, go, lambda c: c.post(URL, json=b, headers=h))])
    assert (first.status_code, second.status_code) == (201, 409), (first.get_json(), second.get_json())
    assert world.count(Contact) == 2 and world.count(IdempotencyRecord) == 1


@pytest.mark.parametrize("external_id", [None, "CASE-7781"])
def test_a_duplicate_that_raced_past_the_hold_replays_even_with_an_external_id(
        app, cast, world, monkeypatch, external_id):
    """The hold is per process on SQLite: a duplicate served by another gunicorn worker finds no
    record yet, then waits for the write lock while the first commits. It must replay the first
    response; with an ``external_id`` it was a 409 "external_id is already used" (seen in a
    4-worker soak), which tells the client its own contact is someone else's."""
    from rapportnotes.services import idempotency

    monkeypatch.setattr(idempotency, "claim", lambda *args: lambda: None)  # the other process's hold
    inside, go = _hold(monkeypatch, idempotency, "store")
    real_lookup, looked = idempotency.lookup, []

    def lookup(*args, **kwargs):
        found = real_lookup(*args, **kwargs)
        looked.append(found)
        if len(looked) == 2:  # the duplicate found no record: now let the first commit
            go.set()
        return found

    monkeypatch.setattr(idempotency, "lookup", lookup)
    h = {**cast.coach.headers, "Idempotency-Key": str(uuid.uuid4())}
    b = body(external_id=external_id)
    first, second = race(app, [lambda c: c.post(URL, json=b, headers=h),
                               lambda c: inside.wait(10) and c.post(URL, json=b, headers=h)])
    assert first.status_code == 201, first.get_json()
    assert second.status_code == 201, second.get_json()
    assert second.get_json() == first.get_json()
    assert world.count(Contact) == 1 and world.count(IdempotencyRecord) == 1
