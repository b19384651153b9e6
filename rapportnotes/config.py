"""Configuration: safe defaults, overridden only by environment variables (12-factor).

The environment is read inside :func:`from_env` so importing the package never
depends on the process environment; tests pass a plain mapping instead.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

MIN_KEY_BYTES = 32

DEFAULTS: dict[str, Any] = {
    "ENV": "production",
    "SQLALCHEMY_DATABASE_URI": None,  # filled from the instance path when unset
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "JSON_MAX_DEPTH": 32,
    "DB_STATEMENT_TIMEOUT_MS": 5000,
    "DB_CONNECT_TIMEOUT_S": 3,
    "DB_POOL_TIMEOUT_S": 5,
    # A pooled connection idle this long is pinged before use (rapportnotes.pool); 0: always.
    "DB_PING_IDLE_S": 10.0,
    "JWT_SECRET_KEY": None,
    "JWT_ISSUER": "rapportnotes",
    "JWT_AUDIENCE": "rapportnotes-api",
    "ACCESS_TOKEN_TTL": 15 * 60,
    "REFRESH_TOKEN_TTL": 12 * 3600,
    "RATELIMIT_STORAGE_URI": "memory://",
    # A Redis that stops answering must cost a request this long at most, then the in-memory
    # fallback takes over (without it a hung Redis holds every worker until gunicorn kills it).
    "RATELIMIT_STORAGE_TIMEOUT_S": 0.5,
    "LOGIN_LIMIT_PER_EMAIL": "5 per minute;20 per hour",
    "LOGIN_LIMIT_PER_ADDRESS": "30 per minute",
    "PASSWORD_CHANGE_LIMIT_PER_USER": "5 per minute;20 per hour",
    "LOG_LEVEL": "INFO",
    # Reverse proxies in front of the app whose X-Forwarded-For is trusted (ProxyFix x_for);
    # 0 (default): the peer address is the client's, and X-Forwarded-For is ignored.
    "TRUSTED_PROXY_HOPS": 0,
    "IDEMPOTENCY_TTL_HOURS": 24,
    # Sync (``updated_since``) only serves changes at least this old, so a transaction that
    # commits late cannot slip in behind a cursor a client already passed.
    "SYNC_SETTLE_SECONDS": 2,
    # SQLite: FULL syncs the write-ahead log at every commit, so an acknowledged write survives
    # a power loss or an OS crash (NORMAL, faster, may lose the last ones). Tests use NORMAL.
    "SQLITE_SYNCHRONOUS": "FULL",
    "ARGON2_TIME_COST": None,  # None: argon2-cffi's recommended defaults
    "ARGON2_MEMORY_COST": None,
}

# Environment variable -> (config key, converter)
ENV_VARS: dict[str, tuple[str, Any]] = {
    "RAPPORTNOTES_ENV": ("ENV", str),
    "DATABASE_URL": ("SQLALCHEMY_DATABASE_URI", str),
    "JWT_SECRET_KEY": ("JWT_SECRET_KEY", str),
    "JWT_ISSUER": ("JWT_ISSUER", str),
    "JWT_AUDIENCE": ("JWT_AUDIENCE", str),
    "ACCESS_TOKEN_TTL": ("ACCESS_TOKEN_TTL", int),
    "REFRESH_TOKEN_TTL": ("REFRESH_TOKEN_TTL", int),
    "RATELIMIT_STORAGE_URI": ("RATELIMIT_STORAGE_URI", str),
    "LOGIN_LIMIT_PER_EMAIL": ("LOGIN_LIMIT_PER_EMAIL", str),
    "LOGIN_LIMIT_PER_ADDRESS": ("LOGIN_LIMIT_PER_ADDRESS", str),
    "PASSWORD_CHANGE_LIMIT_PER_USER": ("PASSWORD_CHANGE_LIMIT_PER_USER", str),
    "LOG_LEVEL": ("LOG_LEVEL", str),
    "DB_STATEMENT_TIMEOUT_MS": ("DB_STATEMENT_TIMEOUT_MS", int),
    "DB_PING_IDLE_S": ("DB_PING_IDLE_S", float),
    "TRUSTED_PROXY_HOPS": ("TRUSTED_PROXY_HOPS", int),
}


def from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    """Return the settings present in the environment, converted to their types."""
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for var, (key, conv) in ENV_VARS.items():
        raw = environ.get(var)
        if raw is not None and raw != "":
            try:
                out[key] = conv(raw)
            except ValueError:
                raise ConfigError(f"{var} must be a {'whole ' if conv is int else ''}number.") from None
    return out


class ConfigError(RuntimeError):
    """Raised at start-up when the configuration would be unsafe to run with."""


def finalise(config: dict[str, Any], instance_path: str) -> None:
    """Fill derived settings and refuse unsafe ones, in place.

    Run once by ``create_app`` after defaults, environment and the caller's mapping are merged.
    """
    inst = Path(instance_path)
    if not config.get("SQLALCHEMY_DATABASE_URI"):
        inst.mkdir(parents=True, exist_ok=True)
        config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{inst / 'rapportnotes.db'}"

    key = config.get("JWT_SECRET_KEY")
    if not key:
        if config["ENV"] not in ("development", "testing"):
            raise ConfigError(
                "JWT_SECRET_KEY is required outside development "
                "(set RAPPORTNOTES_ENV=development to use a generated key)."
            )
        key = _development_key(inst)
    if len(key.encode()) < MIN_KEY_BYTES:
        raise ConfigError(f"JWT_SECRET_KEY must be at least {MIN_KEY_BYTES} bytes.")
    config["JWT_SECRET_KEY"] = key
    if not 0 <= config["TRUSTED_PROXY_HOPS"] <= 10:
        raise ConfigError("TRUSTED_PROXY_HOPS must be between 0 and 10.")

    config.update(
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_ENCODE_ISSUER=config["JWT_ISSUER"],
        JWT_DECODE_ISSUER=config["JWT_ISSUER"],
        JWT_ENCODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_DECODE_AUDIENCE=config["JWT_AUDIENCE"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=config["ACCESS_TOKEN_TTL"]),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=config["REFRESH_TOKEN_TTL"]),
        JWT_VERIFY_SUB=True,
        RATELIMIT_HEADERS_ENABLED=True,
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=True,
        # Not swallowed: a storage error already falls back to memory (the check, the headers)
        # or is caught (rapportnotes.attempts' give-back); flask-limiter swallows only an error
        # that recurs once it is on memory, and then the view runs with no limit at all.
        RATELIMIT_SWALLOW_ERRORS=False,
        RATELIMIT_STORAGE_URI=config["RATELIMIT_STORAGE_URI"],
        RATELIMIT_STORAGE_OPTIONS=_ratelimit_storage_options(config),
        SQLALCHEMY_ENGINE_OPTIONS=engine_options(config),
    )


def _ratelimit_storage_options(config: dict[str, Any]) -> dict[str, Any]:
    uri: str = config["RATELIMIT_STORAGE_URI"]
    if not uri.startswith(("redis://", "rediss://", "redis+unix://")):
        return {}
    timeout = config["RATELIMIT_STORAGE_TIMEOUT_S"]
    return {"socket_timeout": timeout, "socket_connect_timeout": timeout}


def engine_options(config: dict[str, Any]) -> dict[str, Any]:
    """Engine settings that keep a request from hanging on a sick database.

    No ``pool_pre_ping`` option: ``rapportnotes.pool`` gives the same guarantee for connections
    the server ends while pooled, without its round trip on every busy request."""
    url: str = config["SQLALCHEMY_DATABASE_URI"]
    opts: dict[str, Any] = {}
    if url.startswith("postgresql"):
        opts["pool_timeout"] = config["DB_POOL_TIMEOUT_S"]
        opts["connect_args"] = {
            "connect_timeout": config["DB_CONNECT_TIMEOUT_S"],
            "options": f"-c statement_timeout={int(config['DB_STATEMENT_TIMEOUT_MS'])}",
        }
    elif url.startswith("sqlite"):
        opts["connect_args"] = {"timeout": sqlite_busy_timeout_ms(config) / 1000}
    return opts


# SQLite's busy handler takes a C int of milliseconds: the longest wait it can be given (24 days).
SQLITE_LONGEST_WAIT_MS = 2**31 - 1


def sqlite_busy_timeout_ms(config: dict[str, Any]) -> int:
    """``DB_STATEMENT_TIMEOUT_MS`` as SQLite's busy timeout. 0 means no limit, as PostgreSQL's
    ``statement_timeout = 0`` does; SQLite's own 0 would instead fail at once on a lock."""
    ms = int(config["DB_STATEMENT_TIMEOUT_MS"])
    return SQLITE_LONGEST_WAIT_MS if ms <= 0 else min(ms, SQLITE_LONGEST_WAIT_MS)


def _development_key(inst: Path) -> str:
    """A random key generated once and kept under ``instance/`` so restarts keep sessions."""
    inst.mkdir(parents=True, exist_ok=True)
    path = inst / "jwt-secret.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()
