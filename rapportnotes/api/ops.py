"""Liveness and readiness probes for the load balancer (outside ``/api/v1``, no auth)."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import text

from rapportnotes.errors import problem
from rapportnotes.extensions import db

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    """The process is alive; deliberately touches nothing else."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Ready when the database answers; 503 (with Retry-After) until it does again."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:
        db.session.rollback()
        db.session.close()
        return problem(503, "The database is unavailable.", headers={"Retry-After": "5"})
    return {"status": "ready"}
