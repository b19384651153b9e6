"""Staff directory and team listings page through names and emails of any script and length.

A cursor carries the last row's name or email; each page's ``next_cursor`` must be accepted
when passed back, however long and non-ASCII that value is."""

from __future__ import annotations

import pytest

from tests.support import paging

LONG_NAMES = ["Я" * 200, "東" * 200, "\U0001d400" * 200,
              "Команда поддержки выздоровления при участии равных консультантов"]


@pytest.mark.parametrize("name", LONG_NAMES, ids=["cyrillic", "cjk", "astral", "realistic"])
def test_every_team_is_reachable_through_the_cursors_the_listing_hands_out(client, cast, world, name):
    world.team(cast.org, name)
    world.team(cast.org, name[:-1] + "~")  # after the long name: only reachable through its cursor
    expected = ["Team A", "Team A2", name, name[:-1] + "~"]
    seen, pages = paging.walk(client, "/api/v1/teams?limit=1", cast.admin.headers)
    assert sorted(t["name"] for t in seen) == sorted(expected) and pages == 4


def test_every_user_is_reachable_through_the_cursors_the_listing_hands_out(client, cast, world):
    long_email = "\U0001d400" * 200 + "@example.org"
    world.user(cast.org, "coach", email=long_email, display_name="Long", login=False)
    world.user(cast.org, "coach", email="\U0001d400" * 201 + "@example.org", display_name="Longer",
               login=False)
    seen, _ = paging.walk(client, "/api/v1/users?limit=1", cast.admin.headers)
    assert len(seen) == 8 and long_email.lower() in {u["email"] for u in seen}


def test_a_cursor_longer_than_any_the_listing_hands_out_is_still_refused(client, cast):
    r = client.get("/api/v1/teams?cursor=" + "A" * 2049, headers=cast.admin.headers)
    assert r.status_code == 422 and "cursor" in r.get_json()["errors"]
