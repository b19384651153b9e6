"""Connection liveness: SQLAlchemy's ``pool_pre_ping`` without its round trip on busy connections.

``pool_pre_ping`` (SPEC §8) sends ``SELECT 1`` on every checkout: one extra round trip on every
request, about 15 % of contact-create throughput on the benchmark machine. It exists so that a
connection the database has dropped is replaced before a request meets it. This module keeps
that guarantee for the ways connections die while pooled, and pings only when it could matter:

* a connection the server has ended (a restarted or failed-over server, ``pg_terminate_backend``,
  an idle-session timeout) has input waiting: the server's farewell, or the socket's close. A
  zero-timeout ``poll`` of the socket sees it at no cost, and that connection is pinged (and
  replaced, the request never sees it);
* a connection idle longer than ``DB_PING_IDLE_S`` is pinged, for deaths that send nothing (a
  proxy or firewall dropping idle sockets silently).

A connection used moments ago with nothing waiting is handed out as it is. Only a connection that
dies silently and while busy reaches a statement: that request fails cleanly (503, nothing
stored), SQLAlchemy recognises the disconnect and discards the pool (``rapportnotes.driver``,
which runs past SQLAlchemy, calls ``distrust_pooled`` instead: every connection pooled before
that moment is pinged at its next checkout), and the next request starts afresh.
``DB_PING_IDLE_S`` = 0 pings on every checkout, exactly as ``pool_pre_ping`` would.
"""

from __future__ import annotations

import select
import time
import weakref
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

_IDLE_SINCE = "rapportnotes_idle_since"
_distrusted_before: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()


def distrust_pooled(engine: Engine) -> None:
    """Ping every connection of ``engine``'s pool returned before now at its next checkout: one
    of them was found dead, and its siblings may have died with it (a restarted server)."""
    _distrusted_before[engine] = time.monotonic()


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
        if (idle_since is not None and time.monotonic() - idle_since < idle_seconds
                and idle_since > _distrusted_before.get(engine, float("-inf"))
                and not server_has_spoken(dbapi_conn)):
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as err:  # any failure of the ping means this connection is unusable
            raise exc.DisconnectionError(f"idle connection failed its ping: {type(err).__name__}") from err
        if not alive:
            raise exc.DisconnectionError("idle connection failed its ping")
        record.info[_IDLE_SINCE] = time.monotonic()


def server_has_spoken(dbapi_conn: Any) -> bool:
    """Whether a pooled (so idle) connection has input waiting, without reading it.

    Nothing is expected on an idle connection; what arrives is nearly always the server ending
    it. A rare harmless message (a parameter change after a configuration reload) costs one
    ping. For a driver without a socket (SQLite) there is nothing to watch: False.
    """
    pgconn = getattr(dbapi_conn, "pgconn", None)  # psycopg 3
    if pgconn is None:
        return False
    try:
        poller = select.poll()  # not select.select: that cannot watch descriptors past 1023
        poller.register(pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))
    except Exception:  # no socket any more (libpq dropped it when the server closed): ping it
        return True
