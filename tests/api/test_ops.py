"""Health, readiness, and recovery when the database goes away and comes back."""

from __future__ import annotations

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


@pytest.mark.parametrize("needs_pg", [pytest.param(True, id="postgresql")] if PG_URL else [])
def test_database_goes_away_and_comes_back_without_a_restart(needs_pg, world):
    url = create_pg_database("rn_proxy")
    proxy = None
    try:
        migrate_to_head(url)
        proxy = TcpProxy(make_url(url).port or 5432).start()
        proxied = make_url(url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        app = make_app(proxied, DB_CONNECT_TIMEOUT_S=1, DB_POOL_TIMEOUT_S=1)
        c = app.test_client()
        assert c.get("/readyz").status_code == 200
        from tests.support.world import World

        w = World(app)
        org = w.org()
        u = w.user(org, "coach")
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
        with app.app_context():
            from rapportnotes.extensions import db

            opts = db.engine.dialect, db.engine.pool._pre_ping
            db.engine.dispose()
        assert opts[1] is True
    finally:
        if proxy:
            proxy.stop()
        drop_pg_database(url)


def test_engine_has_pre_ping_and_statement_timeout(app, backend):
    from rapportnotes.config import engine_options

    opts = engine_options(dict(app.config))
    assert opts["pool_pre_ping"] is True
    if backend == "postgresql":
        assert "statement_timeout=5000" in opts["connect_args"]["options"]
        with app.app_context():
            from sqlalchemy import text

            from rapportnotes.extensions import db

            assert db.session.execute(text("SHOW statement_timeout")).scalar() == "5s"
            db.session.rollback()
