"""Shared plumbing for the benchmarks: a throw-away PostgreSQL database, migrations, gunicorn
servers on loopback, and wrk. Benchmarks are run by hand (never by pytest or CI)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://root@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key-that-is-long-enough-0123456789abcdef"
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
# As the README's deployment runs it: no gunicorn access log (the app logs each request itself).
GUNICORN_ARGS = ["--workers", str(WORKERS), "--worker-class", "sync", "--log-level", "warning"]


@contextlib.contextmanager
def scratch_database(prefix: str = "rn_bench") -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        yield url.replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(DATABASE_URL=database_url, JWT_SECRET_KEY=SECRET, ACCESS_TOKEN_TTL="7200",
               RAPPORTNOTES_ENV="production", **extra)
    return env


def make_app(database_url: str):
    env = app_env(database_url)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "JWT_SECRET_KEY", "ACCESS_TOKEN_TTL",
                                           "RAPPORTNOTES_ENV")})
    from rapportnotes import create_app

    return create_app()


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(target: str, env: dict[str, str], cwd: Path = ROOT) -> Iterator[str]:
    """Serve ``target`` (``module:app``) on a loopback port; yields the base URL."""
    port = free_port()
    exe = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    # The app logs one JSON line per request (production default): kept, but sent nowhere.
    proc = subprocess.Popen([exe, *GUNICORN_ARGS, "--bind", f"127.0.0.1:{port}", target],
                            cwd=cwd, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{target} did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def wrk(url: str, lua: Path, seconds: int, connections: int = 8, threads: int = 2) -> dict[str, float]:
    """Run wrk against a loopback URL; return requests/s, p50 and p99 in milliseconds."""
    assert url.startswith("http://127.0.0.1:"), "benchmarks only ever target loopback"
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
                          "-s", str(lua), url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} failed requests against {url}:\n{out}")

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"rps": rps, "p50": pct("50"), "p99": pct("99")}
