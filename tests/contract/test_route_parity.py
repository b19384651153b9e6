"""Every route the app serves is in openapi.yaml, and every operation there is routed."""

from tests.support.openapi_validation import spec, spec_path_for

IGNORED_METHODS = {"HEAD", "OPTIONS"}
NOT_API = ("/docs", "/static")  # Swagger UI page and assets: not part of the API contract


def routed(app) -> set[tuple[str, str]]:
    out = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(NOT_API):
            continue
        tpl = spec_path_for(rule.rule)
        name = tpl or rule.rule
        for method in rule.methods - IGNORED_METHODS:
            out.add((method, name))
    return out


def documented() -> set[tuple[str, str]]:
    out = set()
    for path, item in spec()["paths"].items():
        for method in ("get", "post", "put", "patch", "delete"):
            if method in item:
                out.add((method.upper(), path))
    return out


def test_every_route_is_documented(app):
    assert routed(app) - documented() == set()


def test_every_documented_operation_is_routed(app):
    assert documented() - routed(app) == set()


def test_no_route_declares_options_itself(app):
    """flask-jwt-extended skips authentication for OPTIONS; only Flask's automatic handler may
    answer it, and it runs no view."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            assert rule.provide_automatic_options or "OPTIONS" not in rule.methods, rule.rule


def test_automatic_options_runs_no_view_and_leaks_nothing(client, cast):
    r = client.options("/api/v1/contacts")
    assert r.status_code == 200 and r.get_data() == b""
    assert "GET" in r.headers["Allow"]
