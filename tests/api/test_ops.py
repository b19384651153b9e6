"""Health, readiness, and recovery when the database goes away and comes back."""

from __future__ import annotations

import contextlib
import time

import pytest
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, create_pg_database, drop_pg_database, make_app, migrate_to_head
from tests.support.problems import assert_problem
from tests.support.tcpproxy import TcpProxy


def test_healthz_and_readyz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.get_json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.get_json() == {"status": "ready"}


def test_healthz_needs_no_database():
    app = make_app("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert app.test_client().get("/healthz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable():
    app = make_app("postgresql+psycopg://nobody@127.0.0.1:1/none", DB_CONNECT_TIMEOUT_S=1)
    r = app.test_client().get("/readyz")
    assert_problem(r, 503)
    assert r.headers["Retry-After"]


@contextlib.contextmanager
def _behind_a_proxy():
    """An app on a fresh migrated PostgreSQL database reached through a TCP proxy that the test
    stops and starts (the database going away and coming back), and a coach of it."""
    from tests.support.world import World

    url = create_pg_database("rn_proxy")
    proxy = None
    try:
        migrate_to_head(url)
        proxy = TcpProxy(make_url(url).port or 5432).start()
        proxied = make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = make_app(proxied, DB_CONNECT_TIMEOUT_S=1, DB_POOL_TIMEOUT_S=1)
        w = World(app)
        yield app, proxy, w.user(w.org(), "coach")
        _dispose(app)
    finally:
        if proxy:
            proxy.stop()
        drop_pg_database(url)


@pytest.mark.parametrize("needs_pg", [pytest.param(True, id="postgresql")] if PG_URL else [])
def test_database_goes_away_and_comes_back_without_a_restart(needs_pg, world):
    with _behind_a_proxy() as (app, proxy, u):
        c = app.test_client()
        assert c.get("/readyz").status_code == 200
        assert c.get("/api/v1/me", headers=u.headers).status_code == 200
        proxy.stop()
        r = c.get("/readyz")
        assert_problem(r, 503)
        r = c.get("/api/v1/me", headers=u.headers)
        assert_problem(r, 503)
        assert r.headers["Retry-After"] and "Traceback" not in r.get_data(as_text=True)
        proxy.start()
        assert c.get("/readyz").status_code == 200
        assert c.get("/api/v1/me", headers=u.headers).status_code == 200


@pytest.mark.parametrize("needs_pg", [pytest.param(True, id="postgresql")] if PG_URL else [])
def test_a_contact_create_while_the_database_is_away_is_a_503(needs_pg):
    """The create's statement checks its connection out of the pool itself
    (``rapportnotes.driver``): a database that cannot be reached then is the same 503 with
    ``Retry-After`` as on every other path, not a 500."""
    with _behind_a_proxy() as (app, proxy, u):
        c = app.test_client()
        contact = {"peer_ref": "P-1", "occurred_at": "2025-01-02T10:00:00Z", "duration_minutes": 5,
                   "modality": "phone"}
        assert c.post("/api/v1/contacts", json=contact, headers=u.headers).status_code == 201
        proxy.stop()
        r = c.post("/api/v1/contacts", json=contact, headers=u.headers)
        assert_problem(r, 503)
        assert r.headers["Retry-After"]
        proxy.start()
        assert c.post("/api/v1/contacts", json=contact, headers=u.headers).status_code == 201


def test_engine_has_a_statement_timeout(app, backend):
    from rapportnotes.config import engine_options

    opts = engine_options(dict(app.config))
    assert "pool_pre_ping" not in opts  # rapportnotes.pool does its work, without most round trips
    if backend == "postgresql":
        assert "statement_timeout=5000" in opts["connect_args"]["options"]
        with app.app_context():
            from sqlalchemy import text

            from rapportnotes.extensions import db

            assert db.session.execute(text("SHOW statement_timeout")).scalar() == "5s"
            db.session.rollback()


def _pinging_app(database_url: str, idle_s: float, monkeypatch, fail_first: bool = False):
    """An app whose dialect counts pings (and, with ``fail_first``, fails the first one)."""
    app = make_app(database_url, DB_PING_IDLE_S=idle_s)
    pings: list[int] = []
    with app.app_context():
        from rapportnotes.extensions import db

        dialect = db.engine.dialect
    real = dialect.do_ping

    def counted(dbapi_conn):
        pings.append(1)
        if fail_first and len(pings) == 1:
            raise RuntimeError("connection reset by peer")
        return real(dbapi_conn)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return app, pings


def _dispose(app) -> None:
    with app.app_context():
        from rapportnotes.extensions import db

        db.engine.dispose()


@pytest.mark.parametrize(("idle_s", "least", "most"), [
    pytest.param(3600, 0, 0, id="busy-not-pinged"),  # each checkout finds a connection used moments ago
    pytest.param(0, 4, None, id="idle-pinged"),  # every checkout counts as idle: each one pings
])
def test_connections_are_pinged_only_when_idle(database_url, world, monkeypatch, idle_s, least, most):
    u = world.user(world.org(), "coach")
    app, pings = _pinging_app(database_url, idle_s, monkeypatch)
    c = app.test_client()
    for _ in range(5):
        assert c.get("/api/v1/me", headers=u.headers).status_code == 200
    assert len(pings) >= least and (most is None or len(pings) <= most), pings
    _dispose(app)


def test_an_idle_connection_that_fails_its_ping_is_replaced_without_failing_the_request(
        database_url, world, monkeypatch):
    u = world.user(world.org(), "coach")
    app, pings = _pinging_app(database_url, 0, monkeypatch, fail_first=True)
    c = app.test_client()
    assert c.get("/api/v1/me", headers=u.headers).status_code == 200
    assert c.get("/api/v1/me", headers=u.headers).status_code == 200  # pings, fails, reconnects
    assert len(pings) >= 2
    _dispose(app)


def _terminate_other_backends(url: str) -> int:
    from sqlalchemy import create_engine, text

    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return len(conn.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).all())
    finally:
        admin.dispose()


@pytest.mark.parametrize("needs_pg", [pytest.param(True, id="postgresql")] if PG_URL else [])
@pytest.mark.parametrize("idle_s", [0, 3600])
def test_a_killed_server_connection(needs_pg, idle_s):
    """A connection the server ended while it sat in the pool is replaced unseen, whether it
    was idle long (pinged anyway) or used a moment ago (the server's farewell is waiting on its
    socket): the database is reachable, so the request succeeds (SPEC §8, ``pool_pre_ping``)."""
    url = create_pg_database("rn_ping")
    try:
        migrate_to_head(url)
        app = make_app(url, DB_PING_IDLE_S=idle_s)
        from tests.support.world import World

        w = World(app)
        u = w.user(w.org(), "coach")
        c = app.test_client()
        assert c.get("/api/v1/me", headers=u.headers).status_code == 200
        assert _terminate_other_backends(url) >= 1
        time.sleep(0.2)  # the farewell crosses loopback
        assert c.get("/api/v1/me", headers=u.headers).status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/api/v1/me", headers=u.headers).status_code == 200
        _dispose(app)
    finally:
        drop_pg_database(url)


@pytest.mark.parametrize("needs_pg", [pytest.param(True, id="postgresql")] if PG_URL else [])
def test_a_killed_connection_under_a_contact_create(needs_pg, monkeypatch):
    """The create's statement goes to the driver past SQLAlchemy (``rapportnotes.driver``): a
    connection that died without a word (as behind a proxy that drops it silently) is one 503
    with nothing stored, as anywhere else, and neither it nor the pool's other dead connections
    are handed to the next request."""
    from rapportnotes import pool
    from rapportnotes.models import Contact

    monkeypatch.setattr(pool, "server_has_spoken", lambda _conn: False)

    url = create_pg_database("rn_ping")
    try:
        migrate_to_head(url)
        app = make_app(url, DB_PING_IDLE_S=3600)
        from tests.support.world import World

        w = World(app)
        u = w.user(w.org(), "coach")
        c = app.test_client()
        contact = {"peer_ref": "P-1", "occurred_at": "2025-01-02T10:00:00Z", "duration_minutes": 5,
                   "modality": "phone"}
        assert c.post("/api/v1/contacts", json=contact, headers=u.headers).status_code == 201
        with app.app_context():  # leave the pool holding two connections, as a busy one would
            from rapportnotes.extensions import db

            held = [db.engine.connect(), db.engine.connect()]
            for conn in held:
                conn.close()
        assert _terminate_other_backends(url) >= 2
        r = c.post("/api/v1/contacts", json=contact, headers=u.headers)
        assert_problem(r, 503)
        assert "Traceback" not in r.get_data(as_text=True)
        assert c.post("/api/v1/contacts", json=contact, headers=u.headers).status_code == 201
        assert c.get("/api/v1/me", headers=u.headers).status_code == 200
        assert w.count(Contact) == 2
        _dispose(app)
    finally:
        drop_pg_database(url)
