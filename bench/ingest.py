"""Ingestion benchmark: POST /api/v1/contacts against the ceiling of any authenticated endpoint.

Every server runs under the same gunicorn settings on loopback, driven by the same wrk load for
the same time, in the same run: the ceiling (verifying tokens as the app does), the same ceiling
verifying them as flask-jwt-extended does out of the box (for comparison with earlier figures),
then the app. Prints requests/s and p50/p99 for each, and last
``post_contacts_vs_ceiling=<ratio>``. Needs PostgreSQL (BENCH_PG_ADMIN) and wrk.

    .venv/bin/python bench/ingest.py [--seconds 15] [--connections 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from bench.common import ROOT, app_env, gunicorn, make_app, migrate, scratch_database, wrk

LUA = Path(__file__).with_name("post_contact.lua")


def seed(app) -> tuple[str, int]:
    """One organisation and coach; an access token minted exactly as login would."""
    from rapportnotes.extensions import db
    from rapportnotes.models import Contact
    from rapportnotes.services import tokens
    from rapportnotes.services.organisations import create_organisation, create_user

    with app.app_context():
        org = create_organisation(db.session, "Bench org", "America/New_York")
        coach = create_user(db.session, org.id, email=f"coach-{uuid.uuid4().hex[:6]}@bench.test",
                            display_name="Bench coach", role="coach", password="bench-password-123")
        db.session.flush()
        pair = tokens.issue_pair(db.session, coach, app.config["JWT_ACCESS_TOKEN_EXPIRES"])
        db.session.commit()
        return pair.access_token, db.session.query(Contact).count()


def analyze(url: str) -> None:
    """Statistics for the tables the warm-up filled, as autovacuum's auto-analyze would have
    gathered after the first 50 rows (its default threshold).

    Without them the planner costs every index that leads with ``organisation_id`` alike on a
    never-analysed table, and the plan PostgreSQL caches for the foreign-key check of each tag
    (``contact_behaviours`` -> ``contacts``) may read the organisation's whole
    ``ix_contacts_org_updated`` instead of the primary key: each create then costs more as the
    table grows, and that plan is only replaced once statistics change, which with autovacuum
    off (as on the machine these figures come from) is never.
    """
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("ANALYZE")


def count_contacts(app) -> int:
    from rapportnotes.extensions import db
    from rapportnotes.models import AuditEvent, Contact

    with app.app_context():
        n = db.session.query(Contact).count()
        audits = db.session.query(AuditEvent).filter(AuditEvent.action == "contact.create").count()
        assert n == audits, f"{n} contacts but {audits} audit rows"
        return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    with scratch_database() as url:
        app = make_app(url)
        migrate(app)
        token, _ = seed(app)
        env = app_env(url, BENCH_TOKEN=token)
        os.environ["BENCH_TOKEN"] = token
        results = {}
        for name, target in (("ceiling", "bench.ceiling_app:app"),
                             ("ceiling_library_jwt", "bench.ceiling_app:app_with_library_tokens")):
            with gunicorn(target, env) as base:
                wrk(base + "/api/v1/contacts", LUA, 3, args.connections)  # warm-up
                results[name] = wrk(base + "/api/v1/contacts", LUA, args.seconds, args.connections)
        with gunicorn("wsgi:app", env, cwd=ROOT) as base:
            wrk(base + "/api/v1/contacts", LUA, 3, args.connections)  # warm-up
            analyze(url)  # what autovacuum does after the first 50 rows; this server runs without it
            results["post_contacts"] = wrk(base + "/api/v1/contacts", LUA, args.seconds, args.connections)
        stored = count_contacts(app)
        with app.app_context():
            from rapportnotes.extensions import db

            db.engine.dispose()
    for name, r in results.items():
        print(f"{name:<19} {r['rps']:9.1f} req/s   p50 {r['p50']:7.2f} ms   p99 {r['p99']:7.2f} ms")
    print(f"contacts stored (each with its audit row): {stored}")
    print("against a ceiling verifying tokens as flask-jwt-extended does out of the box "
          f"(the bench's ceiling until 2026-12-01): "
          f"{results['post_contacts']['rps'] / results['ceiling_library_jwt']['rps']:.3f}")
    print(f"post_contacts_vs_ceiling={results['post_contacts']['rps'] / results['ceiling']['rps']:.3f}")


if __name__ == "__main__":
    main()
