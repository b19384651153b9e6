"""``rapportnotes seed-demo`` run twice at the same moment (two ``make run``s on one database, or
one beside a deploy script) loads one demo, and both runs succeed with its logins (SPEC §3:
idempotent)."""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import select

from rapportnotes.models import AuditEvent, Organisation, User
from rapportnotes.services import demo
from tests.support.race import in_app_threads


@pytest.mark.parametrize("if_empty", [False, True], ids=["seed-demo", "seed-demo --if-empty"])
def test_two_seed_demo_runs_at_once_load_one_demo_and_both_succeed(app, world, monkeypatch, if_empty):
    from rapportnotes.cli import seed_demo_cmd

    # Hold each run once it has looked for the demo and is about to create it, until the other
    # run gets there too (or a second passes: a run that waits for the first one never comes).
    both_checked = threading.Barrier(2, timeout=1)
    create_organisation = demo.create_organisation

    def held(*args, **kwargs):
        with contextlib.suppress(threading.BrokenBarrierError):
            both_checked.wait()
        return create_organisation(*args, **kwargs)

    monkeypatch.setattr(demo, "create_organisation", held)
    def seed() -> str:  # an exception is what an operator would see instead of the logins
        seed_demo_cmd.main(args=["--if-empty"] if if_empty else [], standalone_mode=False)
        return "ok"

    outcomes = in_app_threads(app, seed)
    assert outcomes == ["ok", "ok"]
    assert world.count(Organisation) == 1 and world.count(User) == len(demo.DEMO_USERS)
    creates = world.run(lambda s: s.scalars(select(AuditEvent.action)
                                            .where(AuditEvent.action == "organisation.create")).all())
    assert creates == ["organisation.create"]
