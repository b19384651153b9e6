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


def _give_back() -> None:
    for taken in limiter.current_limits:
        try:
            stats = taken.limiter.get_window_stats(taken.limit, *taken.request_args)
            if stats.remaining < taken.limit.amount:  # not a window that expired meanwhile
                taken.limiter.hit(taken.limit, *taken.request_args, cost=-1)
        except Exception:  # the storage went away: the slot stays taken, which is the safe side
            log.warning("could not give back a rate-limit slot", exc_info=False)


View = Callable[..., Any]


def only_failures_count(failed: Callable[[Response], bool]) -> Callable[[View], View]:
    """Give back the slots a view's limits took unless ``failed(response)``; put it under the
    view's ``limiter.limit`` decorators (which must not use ``deduct_when``)."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            @after_this_request
            def settle(response: Response) -> Response:
                if not failed(response):
                    _give_back()
                return response

            return view(*args, **kwargs)

        return wrapper

    return decorate
