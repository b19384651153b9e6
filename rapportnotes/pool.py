"""Connection liveness: ping a pooled connection only when it has sat idle.

SQLAlchemy's ``pool_pre_ping`` sends ``SELECT 1`` on every checkout: one extra round trip on
every request, about a tenth of a contact create. A connection that was in use a moment ago is
almost certainly alive, and the ones that die (a database restart, a proxy or firewall
dropping idle sockets) die while idle. So a connection idle longer than ``DB_PING_IDLE_S`` is
pinged before use and silently replaced when dead; a busy one is not. If the database restarts
under load, the statement that meets a dead connection fails (503, nothing stored); SQLAlchemy
then recognises the disconnect and discards every connection of the pool, so the next request
starts afresh. Setting ``DB_PING_IDLE_S`` to 0 pings on every checkout, as ``pool_pre_ping``.
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_IDLE_SINCE = "rapportnotes_idle_since"


def ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Ping connections of ``engine``'s pool that sat idle ``idle_seconds`` or longer."""
    @event.listens_for(engine.pool, "connect")
    def _opened(_dbapi_conn, record) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()  # just opened: known alive

    @event.listens_for(engine.pool, "checkin")
    def _returned(_dbapi_conn, record) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine.pool, "checkout")
    def _checked_out(dbapi_conn, record, _proxy) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as err:  # any failure of the ping means this connection is unusable
            raise exc.DisconnectionError(f"idle connection failed its ping: {type(err).__name__}") from err
        if not alive:
            raise exc.DisconnectionError("idle connection failed its ping")
        record.info[_IDLE_SINCE] = time.monotonic()
