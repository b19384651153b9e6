"""Configuration: from the environment only, and unsafe settings refuse to start."""

from __future__ import annotations

import pytest

from rapportnotes import create_app
from rapportnotes.config import ConfigError, from_env


def test_signing_key_required_outside_development(tmp_path, monkeypatch):
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY"):
        create_app({"ENV": "production", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db"})


def test_short_signing_key_refused(tmp_path):
    with pytest.raises(ConfigError, match="32 bytes"):
        create_app(
            {
                "ENV": "production",
                "JWT_SECRET_KEY": "too-short",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
            }
        )


def test_development_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("RAPPORTNOTES_INSTANCE", str(tmp_path / "inst"))
    monkeypatch.delenv("JWT_SECRET_KEY", raising=False)
    a = create_app({"ENV": "development"})
    b = create_app({"ENV": "development"})
    key_file = tmp_path / "inst" / "jwt-secret.key"
    assert key_file.exists() and oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert a.config["JWT_SECRET_KEY"] == b.config["JWT_SECRET_KEY"] == key_file.read_text().strip()
    assert len(a.config["JWT_SECRET_KEY"]) >= 32
    assert a.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'inst' / 'rapportnotes.db'}"


def test_from_env_reads_and_converts():
    got = from_env(
        {
            "DATABASE_URL": "postgresql+psycopg://x/y",
            "ACCESS_TOKEN_TTL": "60",
            "REFRESH_TOKEN_TTL": "120",
            "RATELIMIT_STORAGE_URI": "redis://r:6379/0",
            "LOG_LEVEL": "DEBUG",
            "UNRELATED": "1",
            "JWT_SECRET_KEY": "",
        }
    )
    assert got == {
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://x/y",
        "ACCESS_TOKEN_TTL": 60,
        "REFRESH_TOKEN_TTL": 120,
        "RATELIMIT_STORAGE_URI": "redis://r:6379/0",
        "LOG_LEVEL": "DEBUG",
    }


def test_token_lifetimes_reach_the_tokens(tmp_path):
    app = create_app(
        {
            "ENV": "testing",
            "JWT_SECRET_KEY": "k" * 40,
            "ACCESS_TOKEN_TTL": 60,
            "REFRESH_TOKEN_TTL": 120,
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/x.db",
        }
    )
    assert app.config["JWT_ACCESS_TOKEN_EXPIRES"].total_seconds() == 60
    assert app.config["JWT_REFRESH_TOKEN_EXPIRES"].total_seconds() == 120


@pytest.mark.parametrize(("var", "value"), [("DB_STATEMENT_TIMEOUT_MS", "abc"), ("ACCESS_TOKEN_TTL", "1.5"),
                                            ("DB_PING_IDLE_S", "soon")])
def test_a_setting_that_is_not_a_number_is_a_config_error(var, value):
    with pytest.raises(ConfigError, match=var):
        from_env({var: value})


@pytest.mark.parametrize("key", [None, "too-short"])
def test_wsgi_entry_point_refuses_in_one_line(tmp_path, key):
    """``gunicorn wsgi:app`` (README, deploying) without a usable key: one line naming the
    problem and gunicorn's "app failed to load" status, not a traceback from every worker."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("JWT_SECRET_KEY", "RAPPORTNOTES_ENV")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/x.db", RAPPORTNOTES_INSTANCE=str(tmp_path / "inst"))
    if key:
        env["JWT_SECRET_KEY"] = key
    proc = subprocess.run([sys.executable, "-c", "import wsgi"], cwd=Path(__file__).resolve().parents[1],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "JWT_SECRET_KEY" in proc.stderr, proc.stderr
    assert not (tmp_path / "inst" / "jwt-secret.key").exists()


@pytest.mark.sqlite
def test_sqlite_syncs_every_commit_and_waits_as_configured(tmp_path):
    """Outside the tests, every SQLite commit is synced to disk (no acknowledged write lost to a
    power cut; WAL's NORMAL may lose the last ones), and the busy timeout is the configured
    ``DB_STATEMENT_TIMEOUT_MS`` (a fixed 5 s overrode it)."""
    from sqlalchemy import text

    from rapportnotes.extensions import db

    app = create_app({"ENV": "testing", "JWT_SECRET_KEY": "k" * 40, "DB_STATEMENT_TIMEOUT_MS": 1234,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'rn.db'}"})
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
                assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 1234
                assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        finally:
            db.engine.dispose()


@pytest.mark.sqlite
def test_no_statement_timeout_is_no_busy_timeout_on_sqlite(tmp_path):
    """``DB_STATEMENT_TIMEOUT_MS=0`` means "no limit" (PostgreSQL's ``statement_timeout = 0``);
    SQLite's own busy timeout of 0 would make every write that meets a lock fail at once."""
    from sqlalchemy import text

    from rapportnotes.config import SQLITE_LONGEST_WAIT_MS
    from rapportnotes.extensions import db

    app = create_app({"ENV": "testing", "JWT_SECRET_KEY": "k" * 40, "DB_STATEMENT_TIMEOUT_MS": 0,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'rn.db'}"})
    with app.app_context():
        try:
            with db.engine.connect() as conn:
                assert conn.execute(text("PRAGMA busy_timeout")).scalar() == SQLITE_LONGEST_WAIT_MS
        finally:
            db.engine.dispose()
