"""rapportnotes: supervision session notes for peer recovery coaching."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from flask import Flask

__all__ = ["create_app"]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then the environment, then ``config`` (tests pass a mapping)."""
    from rapportnotes import config as settings
    from rapportnotes import errors, requestlog, security
    from rapportnotes.api import register as register_api
    from rapportnotes.cli import register as register_cli
    from rapportnotes.extensions import db, jwt, limiter, migrate

    app = Flask(__name__, instance_path=os.environ.get("RAPPORTNOTES_INSTANCE") or None)
    # ``/api/v1//contacts`` is an unknown path (a problem+json 404), not a 308 to a Location
    # built from the Host header with an HTML body, which Werkzeug's slash merging answers.
    app.url_map.merge_slashes = False
    from rapportnotes.jsonprovider import OrjsonProvider

    app.json = OrjsonProvider(app)
    app.config.update(settings.DEFAULTS)
    app.config.update(settings.from_env())
    if config:
        app.config.update(config)
    settings.finalise(app.config, app.instance_path)
    if app.config["TRUSTED_PROXY_HOPS"]:
        # Behind a load balancer every request's peer is the balancer: without this, one
        # address's login limit is everyone's, and audit rows all name the balancer.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["TRUSTED_PROXY_HOPS"])  # type: ignore[method-assign]

    from rapportnotes.services import passwords

    passwords.configure(
        time_cost=app.config["ARGON2_TIME_COST"], memory_cost=app.config["ARGON2_MEMORY_COST"]
    )
    db.init_app(app)
    migrate.init_app(app, db, directory=_migrations_dir(), compare_type=True)
    jwt.init_app(app)
    limiter.init_app(app)
    _configure_pool(app)
    _configure_sqlite(app)

    from rapportnotes import models  # noqa: F401 - register tables with the metadata

    requestlog.init_app(app)
    errors.register(app)
    security.init_app(app)
    register_api(app)
    register_cli(app)
    from rapportnotes import ratelimiting

    ratelimiting.init_app(app)
    return app


def project_path(name: str) -> str:
    """``openapi.yaml`` or ``migrations``: next to the package in a clone (and an editable install),
    inside it as ``_bundled/`` in a wheel (``setup.py`` copies them there)."""
    package = os.path.dirname(os.path.abspath(__file__))
    bundled = os.path.join(package, "_bundled", name)
    return bundled if os.path.exists(bundled) else os.path.join(os.path.dirname(package), name)


def _migrations_dir() -> str:
    return project_path("migrations")


def _configure_pool(app: Flask) -> None:
    from rapportnotes.extensions import db
    from rapportnotes.pool import ping_when_idle

    with app.app_context():
        ping_when_idle(db.engine, app.config["DB_PING_IDLE_S"])


def _configure_sqlite(app: Flask) -> None:
    """WAL for concurrent readers, foreign keys on, a busy timeout (``DB_STATEMENT_TIMEOUT_MS``)
    instead of instant errors, and every commit synced (``SQLITE_SYNCHRONOUS``): no data is ever
    lost, and in WAL mode NORMAL may lose the last commits to a power cut."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from sqlalchemy import event

    from rapportnotes.config import sqlite_busy_timeout_ms
    from rapportnotes.extensions import db

    synchronous = {"FULL": "FULL", "NORMAL": "NORMAL"}[app.config["SQLITE_SYNCHRONOUS"]]
    busy_ms = sqlite_busy_timeout_ms(app.config)
    with app.app_context():
        engine = db.engine

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={busy_ms}")
        if ":memory:" not in app.config["SQLALCHEMY_DATABASE_URI"]:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()
