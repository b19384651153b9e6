"""Limits on failed attempts (logins, current passwords) that hold under concurrent requests.

flask-limiter's ``deduct_when`` only *tests* a limit before the view and counts the request after
its response: every guess already in flight while the counter is under the limit gets its
password checked, so N requests sent at once all passed a limit of 5. Instead each limited view
takes its slot atomically before it runs (a plain ``limiter.limit``, whose check is an atomic
increment), and a request that turns out not to be a failure gives the slot back. A success still
occupies a slot while it runs, so at the limit a concurrent success may see a 429 too, which is
what it would see one moment later anyway.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Response, after_this_request

from rapportnotes.extensions import limiter

log = logging.getLogger("rapportnotes.ratelimit")


def _taken() -> list[tuple[Any, Any, list[str], float]]:
    """What this request's limits took, noted right after the check: the strategy (Redis or the
    in-memory fallback) that took each slot, and the window it was taken in."""
    taken = []
    for lim in limiter.current_limits:
        try:
            strategy = lim.limiter
            reset = strategy.get_window_stats(lim.limit, *lim.request_args).reset_time
        except Exception:  # the storage went away: nothing to give back later
            log.warning("could not read a rate-limit window", exc_info=False)
            continue
        taken.append((strategy, lim.limit, lim.request_args, reset))
    return taken


def _give_back(taken: list[tuple[Any, Any, list[str], float]]) -> None:
    for strategy, item, args, reset in taken:
        try:
            stats = strategy.get_window_stats(item, *args)
            # Only where the slot was taken: the same storage, and a window that has not expired
            # meanwhile (a new window's count is other requests' slots, not this one's).
            if stats.remaining >= item.amount or abs(stats.reset_time - reset) > item.get_expiry() / 2:
                continue
            key = item.key_for(*args)
            if strategy.storage.incr(key, item.get_expiry(), amount=-1) < 0:  # raced past zero
                strategy.storage.incr(key, item.get_expiry(), amount=1)
        except Exception:  # the storage went away: the slot stays taken, which is the safe side
            log.warning("could not give back a rate-limit slot", exc_info=False)


View = Callable[..., Any]


def only_failures_count(failed: Callable[[Response], bool]) -> Callable[[View], View]:
    """Give back the slots a view's limits took unless ``failed(response)``; put it under the
    view's ``limiter.limit`` decorators (which must not use ``deduct_when``)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            taken = _taken()  # the limit decorators above have just taken their slots

            @after_this_request
            def settle(response: Response) -> Response:
                if not failed(response):
                    _give_back(taken)
                return response

            return view(*args, **kwargs)

        return wrapper

    return decorate
