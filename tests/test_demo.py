"""services.demo: the demo organisation is realistic, pseudonymous, valid and loaded once."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from rapportnotes.models import Behaviour, Contact, ContactBehaviour, Organisation, Team, User
from rapportnotes.services.demo import DEMO_PASSWORD, DEMO_TZ, DEMO_USERS, seed_demo
from rapportnotes.services.passwords import verify_password
from rapportnotes.services.timezones import local_date

PEER_REF = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def test_demo_contents_are_valid(world):
    result = world.run(lambda s: seed_demo(s, contacts_per_coach=40))
    assert result.created and len(result.logins) == 5

    def inspect(s):
        org = s.get(Organisation, result.organisation_id)
        assert org.timezone == DEMO_TZ
        users = {u.email: u for u in s.scalars(select(User))}
        assert sorted(users) == sorted(e for e, _n, _r in DEMO_USERS)
        assert all(verify_password(u.password_hash, DEMO_PASSWORD) and u.is_active for u in users.values())
        team = s.scalar(select(Team))
        by_role = Counter(m.role for m in team.members)
        assert by_role == {"coach": 3, "supervisor": 1}
        contacts = list(s.scalars(select(Contact)))
        assert len(contacts) == 120
        now = datetime.now(UTC)
        coaches = {u.id for u in users.values() if u.role == "coach"}
        polarity = dict(s.execute(select(Behaviour.code, Behaviour.polarity)).all())
        for c in contacts:
            assert c.coach_id in coaches and PEER_REF.match(c.peer_ref)
            assert now - timedelta(days=91) < c.occurred_at < now
            assert c.local_date == local_date(c.occurred_at, DEMO_TZ)
            assert 0 <= c.duration_minutes <= 1440 and c.notes is None and not c.deleted
            assert c.peer_rating is None or 0 <= c.peer_rating <= 10
        tags = list(s.execute(select(ContactBehaviour.contact_id, ContactBehaviour.code)))
        assert {code for _c, code in tags} <= set(polarity)
        per_contact = Counter(cid for cid, _code in tags)
        assert all(1 <= n <= 20 for n in per_contact.values()) and len(per_contact) == 120
        ids = {email: u.id for email, u in users.items()}
        return polarity, [tuple(t) for t in tags], {c.id: c.coach_id for c in contacts}, ids

    polarity, tags, coach_of, ids = world.run(inspect)
    barriers = Counter(coach_of[cid] for cid, code in tags if polarity[code] == "counterproductive")
    c1, c3 = ids["coach1@demo.rapportnotes.test"], ids["coach3@demo.rapportnotes.test"]
    assert barriers[c3] > barriers[c1]  # the coaches' habits differ, so the reports do too


def test_seed_demo_twice_and_only_if_empty(world):
    first = world.run(lambda s: seed_demo(s, contacts_per_coach=5))
    again = world.run(lambda s: seed_demo(s, contacts_per_coach=5))
    assert again.organisation_id == first.organisation_id and not again.created
    assert world.count(Contact) == 15 and world.count(Organisation) == 1
    # only_if_empty still reports the existing demo (make run prints its logins every time)
    assert world.run(lambda s: seed_demo(s, only_if_empty=True)).organisation_id == first.organisation_id


def test_only_if_empty_returns_none_when_other_users_exist(world):
    org = world.org()
    world.user(org, "coach", login=False)
    assert world.run(lambda s: seed_demo(s, only_if_empty=True)) is None
    assert world.count(Organisation) == 1 and world.count(Contact) == 0
