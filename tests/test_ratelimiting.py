"""Skipping Flask-Limiter's check where no limit applies (``rapportnotes.ratelimiting``) never
skips a limit: every view Flask-Limiter limits is known as limited, and a configured default
limit turns the skipping off. (``tests/test_ratelimit.py`` shows the declared limits biting.)"""

from __future__ import annotations

from flask_limiter.util import get_qualified_name

from rapportnotes import ratelimiting
from rapportnotes.extensions import limiter
from tests.conftest import make_app
from tests.support.problems import assert_problem


def test_the_views_known_as_limited_are_exactly_those_flask_limiter_limits(app):
    limited = app.extensions[ratelimiting._EXTENSION_KEY]
    marked = {endpoint for endpoint, view in app.view_functions.items()
              if get_qualified_name(view) in limiter._marked_for_limiting}
    assert limited == marked
    assert {"api.auth.login", "api.me.change_password"} <= limited
    # Every view Flask-Limiter wrapped is registered as itself or under a ``functools.wraps``
    # decorator: one that hid the wrapper would leave a marked name without a limited endpoint.
    assert {get_qualified_name(app.view_functions[e]) for e in limited} == limiter._marked_for_limiting


def test_a_view_without_a_limit_is_exempt_and_one_with_a_limit_is_not(app):
    for path, endpoint, exempt in [("/api/v1/contacts", "api.contacts.create", True),
                                   ("/api/v1/auth/login", "api.auth.login", False),
                                   ("/no/such/path", None, False)]:
        with app.test_request_context(path, method="POST") as ctx:
            ctx.match_request()
            assert ctx.request.endpoint == endpoint
            assert ratelimiting._no_limit_applies() is exempt


def test_unreadable_limiter_state_turns_the_skipping_off(monkeypatch):
    monkeypatch.delattr(limiter, "_meta_limits")
    assert ratelimiting.limits_beyond_views()


def test_a_blueprint_limit_turns_the_skipping_off(monkeypatch):
    monkeypatch.setattr(limiter.limit_manager, "_blueprint_limits", {"api": ["1 per day"]})
    assert ratelimiting.limits_beyond_views()


def test_a_configured_default_limit_turns_the_skipping_off(database_url):
    try:
        app = make_app(database_url, RATELIMIT_DEFAULT="2 per minute")
        assert ratelimiting._EXTENSION_KEY not in app.extensions
        with app.test_request_context("/api/v1/contacts", method="POST"):
            assert not ratelimiting._no_limit_applies()
        client = app.test_client()
        assert [client.get("/healthz").status_code for _ in range(2)] == [200, 200]
        assert_problem(client.get("/healthz"), 429)
    finally:  # Flask-Limiter keeps default limits on the (shared) limiter, not on the app
        limiter.limit_manager.set_default_limits([])
