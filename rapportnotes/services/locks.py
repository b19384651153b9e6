"""Row locks for check-then-write sequences that concurrent requests must not interleave."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from rapportnotes.models import Organisation, User


def lock_user(session: Session, organisation_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """Hold the user's row until this transaction ends; whatever is read after this is current.

    Every change whose checks depend on the user (their tokens, their role against their team
    memberships) takes it first, so two such requests take turns and the second sees the first
    one's result, as if they had run one after the other. Always the user's row first, then the
    rows that depend on it.

    PostgreSQL: ``SELECT ... FOR NO KEY UPDATE``, which leaves foreign-key checks of rows that
    refer to the user (a contact being logged) alone. SQLite has no row locks: the database's write
    lock is taken now instead, so a concurrent writer waits for this transaction and later reads
    see its result.
    """
    users = User.__table__
    where = (users.c.organisation_id == organisation_id) & (users.c.id == user_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(users.c.id).where(where).with_for_update(key_share=True))
    else:
        _sqlite_write_lock(session)


def hold_timezone(session: Session, organisation_id: uuid.UUID) -> str:
    """The organisation's time zone, which no zone change can replace before this transaction
    ends. PostgreSQL: ``FOR KEY SHARE`` (``change_timezone`` takes the row ``FOR UPDATE``). SQLite:
    the database's write lock is taken before the read, so a change committed first is seen and
    none can commit until this transaction ends."""
    q = select(Organisation.timezone).where(Organisation.id == organisation_id)
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(read=True, key_share=True)
    else:
        _sqlite_write_lock(session)
    return session.execute(q).scalar_one()


def take_turns(session: Session, name: str) -> None:
    """Hold the lock called ``name`` until this transaction ends, for a check-then-create that has
    no row to lock yet (the check finds nothing): a second caller waits here, then sees the
    first one's rows. PostgreSQL: a transaction-level advisory lock, on any host. SQLite: the
    database's write lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(name, 0))))
    else:
        _sqlite_write_lock(session)


def _sqlite_write_lock(session: Session) -> None:
    """SQLite's one write lock, taken now: the driver opens a transaction at the first write, and
    a write that changes no row still takes the lock (and stamps no ``updated_at``)."""
    session.execute(text("UPDATE organisations SET id = id WHERE 0"))


def stamp_in_commit_order(session: Session) -> None:
    """Call before taking a ``updated_at`` that sync pages by: on SQLite, take the database's
    write lock first, so that stamps follow commit order.

    A sync client may move its cursor past any change it has seen; a change stamped earlier but
    committed later would land behind that cursor and never reach it. SQLite lets one writer at
    a time commit, but a writer that stamped and then waited for the lock (its busy handler is
    not fair: others may take the lock meanwhile) commits an older stamp after newer ones. With
    the lock held from before the stamp until the commit, no other write commits in between.
    PostgreSQL needs nothing here: its transaction is already open when the stamp is taken, and
    sync stops short of the oldest open transaction (``services.contacts.sync_horizon``).
    """
    if session.get_bind().dialect.name == "sqlite":
        _sqlite_write_lock(session)
