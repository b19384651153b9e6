"""The default rapport taxonomy (SPEC §7), in the project's own words (``taxonomy.json``)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from rapportnotes.models import Behaviour
from rapportnotes.models.types import utcnow


@lru_cache(maxsize=1)
def default_behaviours() -> tuple[dict[str, Any], ...]:
    text = resources.files("rapportnotes").joinpath("taxonomy.json").read_text("utf-8")
    return tuple(json.loads(text))


def ensure_default_behaviours(session: Session, organisation_id: uuid.UUID) -> int:
    """Add any default code the organisation lacks; never touches existing (maybe retired) ones."""
    have = set(
        session.scalars(select(Behaviour.code).where(Behaviour.organisation_id == organisation_id))
    )
    # Listing order is (polarity, created_at, code), so each default gets its own instant, one
    # microsecond apart, in SPEC order: a clock read per row can repeat on a fast machine, and
    # then the codes' alphabetical order would win.
    start = utcnow()
    added = 0
    for i, item in enumerate(default_behaviours()):
        if item["code"] not in have:
            created = start + timedelta(microseconds=i)
            session.add(Behaviour(organisation_id=organisation_id, active=True, created_at=created,
                                  updated_at=created, **item))
            added += 1
    return added
