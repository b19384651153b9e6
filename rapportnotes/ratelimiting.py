"""Flask-Limiter's per-request check, skipped where no limit can apply.

Every limit here is declared on its view with ``limiter.limit`` (logins, password changes; SPEC
§8), and Flask-Limiter evaluates those inside the view's own wrapper. Its ``before_request``
check still runs on every request to look for default, application and meta limits, which this
app never configures: about 80 us per request for nothing, on the hottest endpoints too (a contact
create, a report pull). A request filter now exempts requests to views that declare no limit,
only while the limiter holds no limit that is not declared on a view (no default, application,
blueprint, meta or in-memory-fallback limit, whether from configuration or code; if its state
cannot be read, nothing is exempted); a declared limit is never skipped, because its view is
not exempted.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, request

from rapportnotes.extensions import limiter

_EXTENSION_KEY = "rapportnotes.limited_endpoints"


def declares_a_limit(view: Any) -> bool:
    """Whether ``view`` is wrapped by ``limiter.limit`` (Flask-Limiter marks its wrapper with a
    weak proxy of the limiter, which compares equal to it)."""
    marker = getattr(view, "__wrapper-limiter-instance", None)
    return marker is not None and marker == limiter


def limits_beyond_views() -> bool:
    """Whether the limiter holds limits other than those declared on views; True if unsure
    (Flask-Limiter keeps them in attributes of its own, which a release may rename)."""
    manager = limiter.limit_manager
    try:
        held = (manager._default_limits, manager._application_limits, manager._blueprint_limits,
                limiter._meta_limits, limiter._in_memory_fallback)
    except AttributeError:
        return True
    return any(held)


def init_app(app: Flask) -> None:
    """Call once every view is registered and the limiter is bound to ``app``."""
    if limits_beyond_views():
        return
    app.extensions[_EXTENSION_KEY] = frozenset(
        endpoint for endpoint, view in app.view_functions.items() if declares_a_limit(view))


@limiter.request_filter
def _no_limit_applies() -> bool:
    limited = current_app.extensions.get(_EXTENSION_KEY)
    return limited is not None and request.endpoint is not None and request.endpoint not in limited
