"""The demo organisation loaded by ``make run``: realistic, pseudonymous and reproducible."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from rapportnotes.models import AuditEvent, Contact, ContactBehaviour, Team, TeamMember, User
from rapportnotes.services import locks
from rapportnotes.services.audit import Actor, event_row
from rapportnotes.services.organisations import create_organisation, create_user
from rapportnotes.services.timezones import local_date

DEMO_PASSWORD = "rapport-demo-2026"
DEMO_TZ = "America/New_York"
DEMO_USERS = (
    ("admin@demo.rapportnotes.test", "Avery Admin", "admin"),
    ("supervisor@demo.rapportnotes.test", "Sam Supervisor", "supervisor"),
    ("coach1@demo.rapportnotes.test", "Casey Coach", "coach"),
    ("coach2@demo.rapportnotes.test", "Jordan Coach", "coach"),
    ("coach3@demo.rapportnotes.test", "Riley Coach", "coach"),
)

# Each coach has a habit profile so the demo reports differ in a meaningful way.
_SUPPORTIVE = ["genuine_interest", "active_listening", "empathy", "respect", "open_questions",
               "reflections", "validation", "affirmation", "hope", "partnership", "autonomy",
               "safe_space", "shared_experience"]
_BARRIERS = ["judging", "fixing", "dismissing"]
_PROFILES = {"coach1": 0.03, "coach2": 0.12, "coach3": 0.25}  # chance of a barrier tag
_MODALITIES = ["in_person"] * 5 + ["phone"] * 3 + ["video"] * 2 + ["text", "other"]
_SETTINGS = [None, "community", "hospital", "recovery_center", "home_visit", "court"]


@dataclass
class DemoResult:
    organisation_id: uuid.UUID
    logins: list[tuple[str, str]]
    created: bool


class DemoBlocked(Exception):
    """Accounts outside a complete demo already use some of the demo's emails."""

    def __init__(self, emails: list[str]) -> None:
        super().__init__(f"demo emails already in use: {', '.join(emails)}")
        self.emails = emails


def seed_demo(session: Session, *, only_if_empty: bool = False,
              contacts_per_coach: int = 110, seed: int = 7) -> DemoResult | None:
    """Create the demo organisation if it is not there yet; return its logins either way.

    With ``only_if_empty``, a database that has users but no demo is left alone (``None``).
    Two runs at once take turns, so the second finds the first one's demo instead of failing
    on its emails.
    """
    locks.take_turns(session, "rapportnotes:seed-demo")
    logins = [(email, role) for email, _name, role in DEMO_USERS]
    taken = session.execute(
        select(User.email, User.organisation_id).where(User.email.in_([email for email, *_ in DEMO_USERS]))
    ).all()
    homes = {org for _email, org in taken}
    if len(taken) == len(DEMO_USERS) and len(homes) == 1:  # the demo is there already
        return DemoResult(homes.pop(), logins, created=False)
    if only_if_empty and session.scalar(select(func.count()).select_from(User)):
        return None
    if taken:  # some demo emails belong to other accounts: the demo cannot be created whole
        raise DemoBlocked(sorted(email for email, _org in taken))

    org = create_organisation(session, "Riverside Peer Recovery (demo)", DEMO_TZ)
    users = {}
    for email, name, role in DEMO_USERS:
        users[email.split("@")[0]] = create_user(
            session, org.id, email=email, display_name=name, role=role, password=DEMO_PASSWORD
        )
    session.flush()
    team = Team(organisation_id=org.id, name="Riverside outreach")
    session.add(team)
    session.flush()
    team.members.append(TeamMember(organisation_id=org.id, user_id=users["supervisor"].id,
                                   role="supervisor"))
    for key in _PROFILES:
        team.members.append(TeamMember(organisation_id=org.id, user_id=users[key].id,
                                       role="coach"))
    _demo_contacts(session, org.id, users, contacts_per_coach, random.Random(seed))
    return DemoResult(org.id, logins, created=True)


def _demo_contacts(session: Session, org_id: uuid.UUID, users: dict[str, User],
                   per_coach: int, rng: random.Random) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    contacts, tags = [], []
    for key, barrier_rate in _PROFILES.items():
        coach = users[key]
        peers = [f"PEER-{key[-1]}{i:03d}" for i in range(1, 26)]
        for _ in range(per_coach):
            occurred = now - timedelta(minutes=rng.randint(60, 90 * 24 * 60))
            occurred = occurred.replace(minute=rng.choice([0, 15, 30, 45]))
            cid = uuid.uuid4()
            codes = set(rng.sample(_SUPPORTIVE, rng.randint(1, 5)))
            if rng.random() < barrier_rate:
                codes.add(rng.choice(_BARRIERS))
            rated = rng.random() < 0.6
            contacts.append({
                "organisation_id": org_id, "id": cid, "coach_id": coach.id,
                "peer_ref": rng.choice(peers), "occurred_at": occurred,
                "local_date": local_date(occurred, DEMO_TZ),
                "duration_minutes": rng.choice([10, 15, 20, 30, 45, 60, 90]),
                "modality": rng.choice(_MODALITIES), "setting": rng.choice(_SETTINGS),
                "notes": None,
                "peer_rating": (rng.randint(6, 10) if barrier_rate < 0.2 else rng.randint(3, 9))
                if rated else None,
                "external_id": None, "created_at": occurred, "updated_at": occurred,
                "version": 1, "deleted": False, "deleted_at": None,
            })
            tags.extend({"organisation_id": org_id, "contact_id": cid, "code": c}
                        for c in sorted(codes))
    session.execute(insert(Contact), contacts)
    session.execute(insert(ContactBehaviour), tags)
    # Every stored contact has its create event (SPEC §8), the demo's too: by the system.
    actor = Actor(org_id, "system", "cli:seed-demo")
    session.execute(insert(AuditEvent), [
        event_row(actor, "contact.create", target_type="contact", target_id=c["id"], status=201)
        for c in contacts
    ])
