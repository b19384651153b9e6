"""Teams group coaches under the supervisors who supervise them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKeyConstraint, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from rapportnotes.extensions import db
from rapportnotes.models.types import UTCDateTime, new_id, utcnow

MEMBER_ROLES = ("coach", "supervisor")


class Team(db.Model):
    __tablename__ = "teams"
    __table_args__ = (Index("uq_teams_organisation_id_name", "organisation_id", "name", unique=True),)

    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team",
        cascade="all, delete-orphan",
        order_by="TeamMember.created_at",
    )

    __mapper_args__ = {"eager_defaults": False}


class TeamMember(db.Model):
    __tablename__ = "team_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["organisation_id", "team_id"], ["teams.organisation_id", "teams.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["organisation_id", "user_id"], ["users.organisation_id", "users.id"]),
        Index("ix_team_members_org_user", "organisation_id", "user_id", "role"),
    )

    organisation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    team: Mapped[Team] = relationship(back_populates="members")
