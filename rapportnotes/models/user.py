"""Users: coaches, supervisors and admins of one organisation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rapportnotes.extensions import db
from rapportnotes.models.organisation import Organisation
from rapportnotes.models.types import UTCDateTime, new_id, utcnow

ROLES = ("coach", "supervisor", "admin")


class User(db.Model):
    """A person who signs in.

    The primary key leads with ``organisation_id`` so that every row, index and foreign key is
    tenant-scoped (ready to be distributed by organisation). ``email`` is the one deployment-wide
    unique key, because login looks a user up by email alone; it is stored lower-cased.

    ``token_generation`` is copied into every token; bumping it (password change, reset,
    deactivation) ends all of the user's tokens at once without listing them.
    """

    __tablename__ = "users"
    __table_args__ = (Index("uq_users_email", "email", unique=True),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organisations.id"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(254))
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation] = relationship(lazy="joined", innerjoin=True)
