"""Report benchmark: the app's coach and team reports against their own raw SQL, and growth.

Loads contacts with COPY into a fresh PostgreSQL database (500 coaches in 25 teams, ~3 behaviours
per contact, over 2 years), captures the exact SQL the report service issues for a 90-day coach
and team report, times that SQL alone over psycopg (median of many runs), then times the same
reports through the running app over HTTP (gunicorn on loopback). Repeats the coach measurement
at a small and a large size with the same per-coach workload (more coaches, same contacts each),
both served at once and timed in alternating slices.

    .venv/bin/python bench/reports.py [--contacts 1000000] [--small 100000] [--large 5000000]

Last line: ``coach_vs_sql=<r> team_vs_sql=<r> growth_<small>_to_<large>=<r>``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import random
import statistics
import sys
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from sqlalchemy import event

from bench.common import ROOT, WORKERS, app_env, gunicorn, make_app, migrate, scratch_database

TZ = "America/New_York"
DAYS = 730
PER_COACH = 2000  # 1,000,000 contacts over 500 coaches
CODES = ["genuine_interest", "active_listening", "empathy", "respect", "open_questions", "reflections",
         "validation", "affirmation", "hope", "partnership", "autonomy", "safe_space",
         "shared_experience", "judging", "fixing", "dismissing"]
MODS = ["in_person", "phone", "video", "text", "other"]
END = date(2026, 6, 30)
PERIOD = (END - timedelta(days=89), END)


def _copy(conn: psycopg.Connection, table: str, cols: list[str], rows) -> None:
    with conn.cursor().copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)


def load(sa_url: str, coaches: int, per_coach: int, seed: int = 1) -> dict:
    """Organisation, users, teams of 20 coaches, and ``coaches * per_coach`` contacts via COPY."""
    from zoneinfo import ZoneInfo

    from rapportnotes.extensions import db
    from rapportnotes.services.organisations import create_organisation, create_user

    app = make_app(sa_url)
    migrate(app)
    with app.app_context():
        org = create_organisation(db.session, "Bench org", TZ)
        admin = create_user(db.session, org.id, email=f"admin-{uuid.uuid4().hex[:6]}@bench.test",
                            display_name="Admin", role="admin", password="bench-password-123")
        db.session.commit()
        org_id, admin_id, pw_hash = org.id, admin.id, admin.password_hash
    rng = random.Random(seed)
    zone = ZoneInfo(TZ)
    start = datetime.combine(END - timedelta(days=DAYS - 1), datetime.min.time(), tzinfo=zone)
    coach_ids = [uuid.uuid4() for _ in range(coaches)]
    team_ids = [uuid.uuid4() for _ in range(max(1, coaches // 20))]
    dsn = sa_url.replace("postgresql+psycopg://", "postgresql://")
    now = datetime.now(UTC)
    with psycopg.connect(dsn) as conn:
        _copy(conn, "users", ["organisation_id", "id", "email", "display_name", "role", "is_active",
                              "password_hash", "token_generation", "created_at", "updated_at"],
              ((org_id, c, f"c{i}-{c.hex[:6]}@bench.test", f"Coach {i:04d}", "coach", True, pw_hash, 0,
                now, now) for i, c in enumerate(coach_ids)))
        _copy(conn, "teams", ["organisation_id", "id", "name", "created_at"],
              ((org_id, t, f"Team {i:02d}", now) for i, t in enumerate(team_ids)))
        _copy(conn, "team_members", ["organisation_id", "team_id", "user_id", "role", "created_at"],
              ((org_id, team_ids[i // 20 % len(team_ids)], c, "coach", now) for i, c in enumerate(coach_ids)))
        contacts, tags = io.StringIO(), io.StringIO()

        def rows():
            for c in coach_ids:
                for _ in range(per_coach):
                    at = start + timedelta(seconds=rng.randrange(DAYS * 86400))
                    cid = uuid.uuid4()
                    for code in rng.sample(CODES, 3):
                        tags_buf.append((org_id, cid, code))
                    yield (org_id, cid, c, f"PEER-{rng.randrange(60):03d}", at.astimezone(UTC),
                           at.date(), rng.choice([15, 30, 45, 60]), rng.choice(MODS), None,
                           None, rng.choice([None, rng.randrange(11)]), None, now, now, 1, False, None)

        tags_buf: list = []
        _copy(conn, "contacts", ["organisation_id", "id", "coach_id", "peer_ref", "occurred_at",
                                 "local_date", "duration_minutes", "modality", "setting", "notes",
                                 "peer_rating", "external_id", "created_at", "updated_at", "version",
                                 "deleted", "deleted_at"], rows())
        _copy(conn, "contact_behaviours", ["organisation_id", "contact_id", "code"], tags_buf)
        conn.commit()
        del contacts, tags
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")  # the load's dirty pages written now, not while timing
    return {"app": app, "org": org_id, "admin": admin_id, "coaches": coach_ids, "teams": team_ids}


def token_for(app, user_id) -> str:
    from rapportnotes.extensions import db
    from rapportnotes.models import User
    from rapportnotes.services import tokens

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.id == user_id))
        pair = tokens.issue_pair(db.session, user, app.config["JWT_ACCESS_TOKEN_EXPIRES"])
        db.session.commit()
        return pair.access_token


def captured_sql(app, fn) -> list[tuple[str, object]]:
    """The statements (and parameters) the report service runs, for replay as raw SQL."""
    from rapportnotes.extensions import db

    seen: list = []
    with app.app_context():
        listener = lambda conn, cur, stmt, params, ctx, many: seen.append((stmt, params))  # noqa: E731
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            fn(db.session)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
            db.session.rollback()
    return seen


def median_ms(fn, runs: int, warmup: int | None = None) -> float:
    for _ in range(max(3, runs // 10) if warmup is None else warmup):
        fn()
    return statistics.median(samples_ms(fn, runs))


def samples_ms(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return samples


def raw_sql_ms(dsn: str, statements, runs: int) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        def run():
            for stmt, params in statements:
                conn.execute(stmt, params).fetchall()
        return median_ms(run, runs)


def http_get(url: str, token: str):
    """One GET over loopback, one connection each (gunicorn's sync workers close it). The client
    is the plain ``http.client``, so the time is the server's, not urllib's."""
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    target = f"{parts.path}?{parts.query}"
    headers = {"Authorization": f"Bearer {token}"}

    def run():
        conn = http.client.HTTPConnection("127.0.0.1", parts.port)
        try:
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
            assert resp.status == 200, resp.status
            resp.read()
        finally:
            conn.close()
    return run


def http_warmup(runs: int) -> int:
    """Enough GETs that every worker has served several before timing starts."""
    return max(runs // 10, 10 * WORKERS)


@contextlib.contextmanager
def site(coaches: int, per_coach: int, runs: int) -> Iterator[dict]:
    """A loaded database, its raw-SQL figures and the app serving it (kept up until the end, so
    that HTTP figures of two sizes can be taken in alternation)."""
    from rapportnotes.models import Team, User
    from rapportnotes.services import reports

    with scratch_database() as url:
        t0 = time.perf_counter()
        data = load(url, coaches, per_coach)
        loaded = time.perf_counter() - t0
        app, dsn = data["app"], url.replace("postgresql+psycopg://", "postgresql://")
        coach_id, team_id = data["coaches"][0], data["teams"][0]
        period = reports.Period(*PERIOD)
        from rapportnotes.extensions import db

        with app.app_context():  # load the subjects first: only the report's own SQL is captured
            coach = db.session.scalar(db.select(User).where(User.id == coach_id))
            team = db.session.scalar(db.select(Team).where(Team.id == team_id))
            _ = [m.user_id for m in team.members]
            db.session.expunge_all()
        coach_sql = captured_sql(app, lambda s: reports.coach_report(s, s.merge(coach, load=False),
                                                                     period, "week"))
        team_sql = captured_sql(app, lambda s: reports.team_report(s, s.merge(team, load=False), period))
        with psycopg.connect(dsn) as conn:
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + coach_sql[0][0], coach_sql[0][1]))
        out = {"contacts": coaches * per_coach, "load_s": loaded, "plan": plan, "dsn": dsn,
               "coach_statements": coach_sql, "team_statements": team_sql,
               "coach_sql": raw_sql_ms(dsn, coach_sql, runs), "token": token_for(app, data["admin"])}
        q = f"from={PERIOD[0]}&to={PERIOD[1]}"
        try:
            with gunicorn("wsgi:app", app_env(url), cwd=ROOT) as base:
                out["coach_url"] = f"{base}/api/v1/coaches/{coach_id}/report?{q}"
                out["team_url"] = f"{base}/api/v1/teams/{team_id}/report?{q}"
                yield out
        finally:
            with app.app_context():
                db.engine.dispose()


def interleaved_medians(fns: list, runs: int) -> list[float]:
    """Each of ``fns``'s median over ``runs`` samples, taken one call at a time in turn (A B, then
    B A, …), so that every sample of each runs in the same conditions as the others'.

    On this machine (a two-vCPU VM) a PostgreSQL backend that sat idle for a few milliseconds
    runs the same statement markedly slower than one kept busy: the coach aggregates took 1.75 ms
    of backend CPU per execution back to back and 2.6 to 3.0 ms with 5 ms of other work or sleep
    between executions (2026-12-01, ``/proc`` CPU times). Timed back to back, or in slices of
    many back-to-back runs, the raw SQL gets the busy figure while every HTTP pull gets the idle
    one, and the ratio counts that difference as the app's. Timed in turn, each raw execution
    follows a pull, as each pull's statement follows the pulls other workers served."""
    samples: list[list[float]] = [[] for _ in fns]
    for i in range(runs):
        order = list(zip(fns, samples, strict=True))
        for fn, got in order if i % 2 == 0 else reversed(order):  # neither side always goes first
            t = time.perf_counter()
            fn()
            got.append((time.perf_counter() - t) * 1000)
    return [statistics.median(got) for got in samples]


def sql_and_http_medians(dsn: str, statements, get, runs: int) -> tuple[float, float, float]:
    """The raw SQL's median timed back to back (the conventional figure, printed for
    comparison), then the raw SQL's and the HTTP pull's medians timed in turn
    (``interleaved_medians``), in the same minutes."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        def sql():
            for stmt, params in statements:
                conn.execute(stmt, params).fetchall()

        back_to_back = median_ms(sql, runs)
        for _ in range(http_warmup(runs)):
            get()
        in_turn, http = interleaved_medians([sql, get], runs)
    return back_to_back, in_turn, http


def alternating_medians(sites: list[dict], runs: int) -> list[float]:
    """The coach report's HTTP median at each site, sampled in turn, so a change in the
    machine's speed while they run weighs on every site alike."""
    gets = [http_get(s["coach_url"], s["token"]) for s in sites]
    for get in gets:
        for _ in range(http_warmup(runs)):
            get()
    return interleaved_medians(gets, runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=100_000)
    ap.add_argument("--large", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=200)
    args = ap.parse_args()
    with site(args.contacts // PER_COACH, PER_COACH, args.runs) as main_run:
        for report, runs in (("coach", args.runs), ("team", max(50, args.runs // 2))):
            figures = sql_and_http_medians(main_run["dsn"], main_run[f"{report}_statements"],
                                           http_get(main_run[f"{report}_url"], main_run["token"]), runs)
            for name, value in zip(("sql_back_to_back", "sql", "http"), figures, strict=True):
                main_run[f"{report}_{name}"] = value
    print(f"{main_run['contacts']:>9,} contacts loaded in {main_run['load_s']:.0f}s; coach report plan:")
    print("   " + main_run["plan"].replace("\n", "\n   "))
    for report, label in (("coach", "coach 90d"), ("team", "team  90d")):
        r = {k: main_run[f"{report}_{k}"] for k in ("sql", "http", "sql_back_to_back")}
        print(f"{label}: raw SQL {r['sql']:.2f} ms, HTTP {r['http']:.2f} ms, sampled in turn "
              f"(raw SQL back to back {r['sql_back_to_back']:.2f} ms: "
              f"{r['http'] / r['sql_back_to_back']:.2f} against that)")
    with contextlib.ExitStack() as stack:
        small = stack.enter_context(site(args.small // PER_COACH, PER_COACH, args.runs))
        large = stack.enter_context(site(args.large // PER_COACH, PER_COACH, args.runs))
        small["coach_http"], large["coach_http"] = alternating_medians([small, large], args.runs)
    for r in (small, large):
        print(f"{r['contacts']:>9,} contacts: coach raw SQL {r['coach_sql']:.2f} ms (back to back), "
              f"HTTP {r['coach_http']:.2f} ms")
    growth = large["coach_http"] / small["coach_http"]
    print(f"coach_vs_sql={main_run['coach_http'] / main_run['coach_sql']:.2f} "
          f"team_vs_sql={main_run['team_http'] / main_run['team_sql']:.2f} "
          f"growth_{args.small // 1000}k_to_{args.large // 1000}k={growth:.2f}")


if __name__ == "__main__":
    main()
