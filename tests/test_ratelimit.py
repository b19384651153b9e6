"""Failed logins are rate limited per email and per address; successes don't count; limits never
switch off (in-memory fallback when Redis is down); the same behaviour on a real Redis.

The limiter is one per process (as in production, one app per worker), so the variants that need
other limiter settings run in a process of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.conftest import REDIS_URL
from tests.support.problems import assert_problem
from tests.support.world import World

LOGIN = "/api/v1/auth/login"
ROOT = Path(__file__).resolve().parents[1]


def _fail(client, email, addr="10.0.0.1"):
    return client.post(
        LOGIN, json={"email": email, "password": "wrong-password-1"}, environ_overrides={"REMOTE_ADDR": addr}
    )


def _ok(client, user, addr="10.0.0.1"):
    return client.post(
        LOGIN, json={"email": user.email, "password": user.password}, environ_overrides={"REMOTE_ADDR": addr}
    )


def check_per_email_limit(app):
    client = app.test_client()
    w = World(app)
    u = w.user(w.org(), "coach", login=False)
    for _ in range(3):
        assert _ok(client, u).status_code == 200  # successes do not count
    for i in range(5):
        assert _fail(client, u.email, f"10.0.1.{i}").status_code == 401
    r = _fail(client, u.email, "10.0.2.1")
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert_problem(_ok(client, u, "10.0.2.2"), 429)  # the email is locked for now, whoever asks
    assert _fail(client, "someone-else@example.org", "10.0.3.1").status_code == 401


def test_failed_logins_per_email(app):
    check_per_email_limit(app)


def check_concurrent_guesses(app, n: int = 12) -> None:
    """Guesses sent at once: each must take its slot before its password is checked (with the
    limit only tested up front, all twelve were checked and all twelve got a 401)."""
    import threading
    import time

    from rapportnotes.services import passwords

    w = World(app)
    u = w.user(w.org(), "coach")
    real = passwords.verify_password

    def slow(stored, given):  # every guess is in flight before the first one finishes
        time.sleep(0.3)
        return real(stored, given)

    passwords.verify_password = slow
    try:
        start = threading.Barrier(n)
        logins, changes = [], []

        def guess(i):
            c = app.test_client()
            start.wait()
            logins.append(_fail(c, u.email, f"10.7.0.{i}").status_code)
            start.wait()
            changes.append(c.post("/api/v1/me/password", headers=u.headers, json={
                "current_password": f"guess-{i}-xxxxxxxx", "new_password": "a-brand-new-password-7"
            }).status_code)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        passwords.verify_password = real
    assert sorted(logins) == [401] * 5 + [429] * (n - 5), logins
    assert sorted(changes) == [401] * 5 + [429] * (n - 5), changes


def check_refund_stays_in_its_window(app, window: float = 3.0) -> None:
    """A success that took its slot in one window and ends in the next must not give a slot back
    in the new window, which it never took."""
    import threading
    import time

    from rapportnotes.services import passwords

    w = World(app)
    u = w.user(w.org(), "coach", login=False)
    real = passwords.verify_password
    hit, go_on = threading.Event(), threading.Event()

    def held(stored, given):
        if given == u.password:
            hit.set()
            go_on.wait(30)
        return real(stored, given)

    passwords.verify_password = held
    try:
        t = threading.Thread(target=lambda: _ok(app.test_client(), u, "10.8.0.1"))
        t.start()
        assert hit.wait(30)
        time.sleep(window + 0.3)  # the window the success took its slot in is over
        c = app.test_client()
        statuses = [_fail(c, f"w0-{uuid.uuid4().hex}@example.org", "10.8.0.1").status_code]
        go_on.set()
        t.join(30)
        statuses += [_fail(c, f"w{i}-{uuid.uuid4().hex}@example.org", "10.8.0.1").status_code
                     for i in range(3)]
    finally:
        passwords.verify_password = real
    assert statuses == [401, 401, 401, 429], statuses


def test_a_refund_stays_in_its_window(database_url):
    run_isolated(database_url, "check_refund_stays_in_its_window(app)",
                 LOGIN_LIMIT_PER_ADDRESS="3 per 3 seconds")


def test_concurrent_guesses_cannot_overrun_the_limits(app):
    check_concurrent_guesses(app)


def test_failed_logins_per_client_address(app):
    client = app.test_client()
    for i in range(30):
        assert _fail(client, f"user{i}@example.org", "10.9.9.9").status_code == 401
    assert_problem(_fail(client, "fresh@example.org", "10.9.9.9"), 429)
    assert _fail(client, "fresh@example.org", "10.9.9.10").status_code == 401


def test_wrong_current_passwords_are_limited_per_account(app):
    """A stolen access token must not let its holder guess the password it was issued for."""
    client = app.test_client()
    w = World(app)
    org = w.org()
    u, other = w.user(org, "coach"), w.user(org, "coach")
    url = "/api/v1/me/password"

    def change(user, current, headers=None):
        return client.post(url, json={"current_password": current, "new_password": "a-brand-new-password-7"},
                           headers=headers or user.headers)

    forged = u.access_token[:-4] + ("AAAA" if not u.access_token.endswith("AAAA") else "BBBB")
    for _ in range(3):  # neither a token that fails to verify nor a bad body counts
        assert_problem(change(u, "wrong-password-1", {"Authorization": f"Bearer {forged}"}), 401)
        assert_problem(client.post(url, json={"current_password": 5}, headers=u.headers), 422)
    for _ in range(5):
        assert_problem(change(u, "wrong-password-1"), 401)
    r = change(u, "wrong-password-1")
    assert_problem(r, 429)
    assert int(r.headers["Retry-After"]) >= 1
    assert_problem(change(u, u.password), 429)  # locked for now, even with the right password
    r = change(u, "wrong-password-1", {"Authorization": f"Bearer {forged}"})
    assert_problem(r, 401)  # a forged token naming the account learns nothing of the lock
    assert_problem(change(other, "wrong-password-1"), 401)  # per account
    assert client.get("/api/v1/me", headers=u.headers).status_code == 200  # nothing else is limited


def run_isolated(database_url: str, body: str, **config: str) -> None:
    """Run ``body`` with ``app`` built from ``config`` in a fresh interpreter; fail on any error."""
    script = textwrap.dedent(f"""
        from tests.conftest import make_app
        from tests.support.world import World
        from tests.test_ratelimit import (_fail, _ok, check_concurrent_guesses, check_per_email_limit,
                                          check_refund_stays_in_its_window)
        app = make_app({database_url!r}, **{config!r})
    """) + textwrap.dedent(body)
    env = {k: v for k, v in os.environ.items() if k not in ("CI",)}
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_limits_are_configurable(database_url):
    email = f"{uuid.uuid4().hex}@example.org"
    run_isolated(
        database_url,
        f"""
        c = app.test_client()
        assert [_fail(c, {email!r}).status_code for _ in range(3)] == [401, 401, 429]
    """,
        LOGIN_LIMIT_PER_EMAIL="2 per minute",
    )


def test_dead_redis_falls_back_to_memory_and_still_limits(database_url):
    email = f"{uuid.uuid4().hex}@example.org"
    run_isolated(
        database_url,
        f"""
        c = app.test_client()
        statuses = [_fail(c, {email!r}).status_code for _ in range(4)]
        assert statuses[:2] == [401, 401] and 429 in statuses, statuses
    """,
        RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0",
        LOGIN_LIMIT_PER_EMAIL="2 per minute",
    )


def test_storage_dying_mid_request_is_not_a_500(database_url):
    """Redis killed while a failed login is being verified: the limits were checked, then the
    deduction fails. That attempt is a 401 as usual (gunicorn, 4 workers: one 500 per worker)."""
    email = f"{uuid.uuid4().hex}@example.org"
    run_isolated(
        database_url,
        f"""
        import redis
        from rapportnotes.extensions import limiter
        def dead(*a, **k):
            raise redis.exceptions.ConnectionError("Connection refused")
        with app.app_context():
            limiter.storage.incr = dead
        c = app.test_client()
        r = _fail(c, {email!r})
        assert r.status_code == 401, r.status_code
    """,
    )


def test_an_oversized_login_does_not_switch_the_limits_to_fresh_counters(database_url):
    """A body over MAX_CONTENT_LENGTH made the email key function raise; flask-limiter took that
    for a storage outage and moved the process to its empty in-memory counters (from Redis too):
    one unauthenticated request per second reset every worker's limits."""
    email = f"{uuid.uuid4().hex}@example.org"
    run_isolated(
        database_url,
        f"""
        from rapportnotes.extensions import limiter
        c = app.test_client()
        assert [_fail(c, {email!r}, f"10.6.0.{{i}}").status_code for i in range(4)] == [401] * 4
        big = b'{{"email": "{email}", "password": "' + b"x" * (1024 * 1024) + b'"}}'
        r = c.post("/api/v1/auth/login", data=big, content_type="application/json")
        assert r.status_code == 413, r.status_code
        assert not limiter._storage_dead
        assert [_fail(c, {email!r}, f"10.6.1.{{i}}").status_code for i in range(2)] == [401, 429]
    """,
    )


def test_a_redis_that_stops_answering_falls_back_quickly(database_url):
    """A Redis that accepts connections but never replies (a hung server, a dropped route) must
    not hold the request (and with it a sync worker) until gunicorn's 30 s timeout."""
    email = f"{uuid.uuid4().hex}@example.org"
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the kernel and are never answered
    try:
        run_isolated(
            database_url,
            f"""
            import time
            c = app.test_client()
            started = time.monotonic()
            statuses = [_fail(c, {email!r}).status_code for _ in range(4)]
            assert time.monotonic() - started < 10, time.monotonic() - started
            assert statuses[:2] == [401, 401] and 429 in statuses, statuses
        """,
            RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{silent.getsockname()[1]}/0",
            LOGIN_LIMIT_PER_EMAIL="2 per minute",
        )
    finally:
        silent.close()


@pytest.mark.parametrize("redis_url", [REDIS_URL] if REDIS_URL else [])
def test_on_a_real_redis(database_url, redis_url, app):
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/15"  # a database of its own
    r = redis.Redis.from_url(url)
    r.flushdb()
    try:
        run_isolated(
            database_url,
            """
            check_per_email_limit(app)
            check_concurrent_guesses(app)
        """,
            RATELIMIT_STORAGE_URI=url,
        )
        assert r.dbsize() > 0  # the counters really lived in Redis
    finally:
        r.flushdb()


def test_a_listed_authorization_header_does_not_dodge_the_password_limit(app):
    """flask-jwt-extended reads ``Authorization`` as a comma-separated list (``Bearer <t>,``
    authenticates as ``<t>``): the per-account limit must read the token the same way, or a
    trailing comma makes every wrong guess of the current password free."""
    client = app.test_client()
    w = World(app)
    u = w.user(w.org(), "coach")
    body = {"current_password": "wrong-password-1", "new_password": "a-brand-new-password-7"}
    for fmt in ("Bearer {},", "Bearer {}, Basic eA==", "bearer {} ,"):
        headers = {"Authorization": fmt.format(u.access_token)}
        assert client.get("/api/v1/me", headers=headers).status_code == 200  # it authenticates
    statuses = [client.post("/api/v1/me/password", json=body,
                            headers={"Authorization": f"Bearer {u.access_token},"}).status_code
                for _ in range(6)]
    assert statuses == [401] * 5 + [429], statuses
    r = client.post("/api/v1/me/password", json=body, headers=u.headers)
    assert_problem(r, 429)  # the same account's counter, however the header was written


def _behind_proxy(client, email, xff, proxy="10.0.0.254", password="wrong-password-1"):
    return client.post(LOGIN, json={"email": email, "password": password},
                       headers={"X-Forwarded-For": xff}, environ_overrides={"REMOTE_ADDR": proxy})


def test_behind_a_load_balancer_each_client_has_its_own_address_limit(database_url):
    """SPEC §1: app processes sit behind a load balancer, so every peer address is the
    balancer's. Without a trusted-proxy setting, 30 bad logins from anyone lock everyone out."""
    run_isolated(
        database_url,
        """
        from tests.test_ratelimit import _behind_proxy
        c = app.test_client()
        w = World(app)
        victim = w.user(w.org(), "coach", login=False)
        for i in range(30):
            assert _behind_proxy(c, f"spray{i}@example.org", "203.0.113.7").status_code == 401
        assert _behind_proxy(c, "more@example.org", "203.0.113.7").status_code == 429
        # spoofing an extra hop does not help the attacker: only the balancer's entry is trusted
        assert _behind_proxy(c, "more@example.org", "1.2.3.4, 203.0.113.7").status_code == 429
        r = _behind_proxy(c, victim.email, "198.51.100.9", password=victim.password)
        assert r.status_code == 200, r.status_code  # another client behind the same balancer
    """,
        TRUSTED_PROXY_HOPS=1,
    )


def test_without_trusted_proxies_x_forwarded_for_is_ignored(app):
    client = app.test_client()
    for i in range(30):
        assert _behind_proxy(client, f"spray{i}@example.org", f"203.0.113.{i}").status_code == 401
    assert_problem(_behind_proxy(client, "more@example.org", "198.51.100.9"), 429)


def test_a_forwarded_address_that_is_no_address_is_not_stored(database_url):
    """With TRUSTED_PROXY_HOPS the trusted X-Forwarded-For entry becomes the client address for
    the limiter and the audit row: text that is no IP address (300 characters were a 500 on
    PostgreSQL, the audit column holding 64) is recorded as unknown, and the request is served."""
    run_isolated(
        database_url,
        """
        import uuid
        from sqlalchemy import select
        from rapportnotes.models import AuditEvent
        from tests.test_ratelimit import _behind_proxy
        c = app.test_client()
        w = World(app)
        u = w.user(w.org(), "coach", login=False)
        for xff in ("x" * 300, "<script>", "203.0.113.7"):
            r = _behind_proxy(c, u.email, xff)
            assert r.status_code == 401, (xff[:10], r.status_code)
        ips = w.run(lambda s: [e.ip for e in s.scalars(
            select(AuditEvent).where(AuditEvent.organisation_id == uuid.UUID(u.org_id))
            .where(AuditEvent.action == "auth.login").order_by(AuditEvent.at, AuditEvent.id))])
        assert ips == ["unknown", "unknown", "203.0.113.7"], ips
    """,
        TRUSTED_PROXY_HOPS=1,
    )
