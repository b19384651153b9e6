"""Listings ordered by a text column (users by email, teams by name) come in the same order on
every database.

SQLite compares text by code point. PostgreSQL compares it with the database's collation, which
is whatever the database was created with: C on the test server, but en_US (libc or ICU) on many
production servers, where "alpha" sorts before "Team B" and punctuation is ignored at first. The
same listing, and the pages its cursors cut, then differed between the two databases (SPEC §1).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import PG_URL, drop_pg_database, make_app, migrate_to_head
from tests.support.world import World

API = "/api/v1"
TEAM_NAMES = ["Team B", "team a", "alpha", "_night", "Émile", "Zeta", "Team A-2", "TeamA1"]
EMAILS = ["b.x@example.org", "bx@example.org", "b_x@example.org", "b-x@example.org", "Bz@example.org",
          "a@example.org"]


def _walk(client, url: str, headers: dict[str, str], key: str) -> list[str]:
    """Every item's ``key`` over all pages, two at a time (so the cursors are used too)."""
    seen, cursor = [], None
    while True:
        r = client.get(url + "?limit=2" + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert r.status_code == 200, r.get_json()
        body = r.get_json()
        seen += [item[key] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def _check_code_point_order(client, world: World) -> None:
    org = world.org()
    admin = world.user(org, "admin", email="admin@example.org")
    for name in TEAM_NAMES:
        assert client.post(f"{API}/teams", json={"name": name}, headers=admin.headers).status_code == 201
    for email in EMAILS:
        body = {"email": email, "display_name": "x", "role": "coach", "password": "a-long-password-1"}
        assert client.post(f"{API}/users", json=body, headers=admin.headers).status_code == 201
    assert _walk(client, f"{API}/teams", admin.headers, "name") == sorted(TEAM_NAMES)
    emails = [e.lower() for e in EMAILS] + ["admin@example.org"]
    assert _walk(client, f"{API}/users", admin.headers, "email") == sorted(emails)


def test_users_and_teams_are_listed_in_code_point_order(client, world):
    _check_code_point_order(client, world)


@pytest.fixture()
def icu_client() -> Iterator[tuple]:
    """An app on a PostgreSQL database created with an en-US ICU collation."""
    from tests.support.openapi_validation import ValidatingClient

    base = make_url(PG_URL)
    name = f"rn_icu_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\' '
                              "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"))
    finally:
        admin.dispose()
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        migrate_to_head(url)
        app = make_app(url)
        app.test_client_class = ValidatingClient
        yield app.test_client(), World(app)
        with app.app_context():
            from rapportnotes.extensions import db

            db.engine.dispose()
    finally:
        drop_pg_database(url)


@pytest.mark.postgres
def test_the_order_does_not_follow_a_postgresql_locale(icu_client):
    client, world = icu_client
    _check_code_point_order(client, world)
