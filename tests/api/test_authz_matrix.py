"""Authorization matrix for the platform endpoints (auth, /me, users, teams, audit).

Every endpoint below is called by every kind of caller with ids from organisation A, from
organisation B, that do not exist, and that are not ids at all. The expected status of each
call follows from four rules, checked in this order (see ``expected``):

1. no usable access token (anonymous, a deactivated user, a refresh token) -> 401;
   ``/auth/login`` is public and ``/auth/refresh`` takes exactly a refresh token;
2. a role the endpoint does not admit at all -> 403 (before any id is looked at);
3. an id outside the caller's own organisation, unknown, malformed, or a team the supervisor
   does not supervise -> 404 (never revealing existence);
4. otherwise the endpoint's success status.

Contacts, behaviours and reports have their own matrices elsewhere.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from rapportnotes.models import User

_seq = itertools.count()

ANYONE = {"coach", "supervisor", "other_supervisor", "admin", "admin_b"}
ADMIN = {"admin", "admin_b"}
ADMIN_OR_SUPERVISOR = ADMIN | {"supervisor", "other_supervisor"}

CALLERS = ["anonymous", "refresh_token", "inactive", "coach", "supervisor", "other_supervisor",
           "admin", "admin_b"]
HOME = {"admin_b": "org_b"}  # every other caller belongs to organisation A
NO_IDS = ["-"]
IDS = ["org_a", "org_b", "missing", "malformed"]
# Membership paths carry two ids: also try a team of A with a user that is not one of A's.
MEMBER_IDS = [*IDS, "org_a_team+org_b_user", "org_a_team+missing_user", "org_a_team+malformed_user"]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # {team} and {user} are filled from the scope
    roles: set[str]
    success: int
    scopes: list[str]
    body: Any = None  # dict, or a callable(cast, caller) -> dict
    supervisor_scoped: bool = False  # a supervisor sees only the teams they supervise

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint("POST", "/auth/login", set(), 200, NO_IDS,
             body=lambda cast, _: {"email": cast.coach.email, "password": cast.coach.password}),
    Endpoint("POST", "/auth/refresh", set(), 200, NO_IDS),
    Endpoint("POST", "/auth/logout", ANYONE, 204, NO_IDS),
    Endpoint("GET", "/me", ANYONE, 200, NO_IDS),
    Endpoint("POST", "/me/password", ANYONE, 200, NO_IDS,
             body=lambda cast, ref: {"current_password": ref.password if ref else "x",
                                     "new_password": "a-completely-new-password"}),
    Endpoint("GET", "/users", ADMIN, 200, NO_IDS),
    Endpoint("POST", "/users", ADMIN, 201, NO_IDS,
             body=lambda *_: {"email": f"matrix{next(_seq)}@example.org", "display_name": "M",
                              "role": "coach", "password": "matrix-password-1"}),
    Endpoint("GET", "/users/{user}", ADMIN, 200, IDS),
    Endpoint("PATCH", "/users/{user}", ADMIN, 200, IDS, body={"display_name": "Renamed"}),
    Endpoint("GET", "/teams", ADMIN_OR_SUPERVISOR, 200, NO_IDS),
    Endpoint("POST", "/teams", ADMIN, 201, NO_IDS, body=lambda *_: {"name": f"Matrix {next(_seq)}"}),
    Endpoint("GET", "/teams/{team}", ADMIN_OR_SUPERVISOR, 200, IDS, supervisor_scoped=True),
    Endpoint("PATCH", "/teams/{team}", ADMIN, 200, IDS, body=lambda *_: {"name": f"Renamed {next(_seq)}"}),
    Endpoint("PUT", "/teams/{team}/members/{user}", ADMIN, 200, MEMBER_IDS, body={"role": "coach"}),
    Endpoint("DELETE", "/teams/{team}/members/{user}", ADMIN, 204, MEMBER_IDS),
    Endpoint("GET", "/audit", ADMIN, 200, NO_IDS),
]


def expected(ep: Endpoint, caller: str, scope: str) -> int:
    if ep.path == "/auth/login":
        return ep.success
    if ep.path == "/auth/refresh":
        return ep.success if caller == "refresh_token" else 401
    if caller in ("anonymous", "refresh_token", "inactive"):
        return 401
    if caller not in ep.roles:
        return 403
    if scope == "-":
        return ep.success
    if scope != HOME.get(caller, "org_a"):
        return 404
    if ep.supervisor_scoped and caller == "other_supervisor":
        return 404
    return ep.success


def ids_for(cast, scope: str) -> dict[str, str]:
    """Ids per scope. In A the user is coach2, a coach member of the supervisor's team."""
    missing = str(uuid.uuid4())
    team, user = {
        "-": (None, None),
        "org_a": (cast.team, cast.coach2.id),
        "org_b": (cast.team_b, cast.coach_b.id),
        "missing": (missing, missing),
        "malformed": ("not-a-team", "not-a-user"),
        "org_a_team+org_b_user": (cast.team, cast.coach_b.id),
        "org_a_team+missing_user": (cast.team, missing),
        "org_a_team+malformed_user": (cast.team, "0x1234"),
    }[scope]
    return {"team": team, "user": user}


def _callers(cast, world) -> dict[str, tuple[Any, dict[str, str]]]:
    inactive = world.user(cast.org, "admin")

    def deactivate(s):
        s.get(User, (uuid.UUID(cast.org), uuid.UUID(inactive.id))).is_active = False

    world.run(deactivate)
    refs = {name: getattr(cast, name) for name in
            ("coach", "supervisor", "other_supervisor", "admin", "admin_b")}
    out = {name: (ref, ref.headers) for name, ref in refs.items()}
    out["anonymous"] = (None, {})
    out["inactive"] = (inactive, inactive.headers)
    out["refresh_token"] = (cast.admin, {"Authorization": f"Bearer {cast.admin.refresh_token}"})
    return out


@pytest.mark.parametrize("ep", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_matrix(client, cast, world, ep: Endpoint):
    callers = _callers(cast, world)
    table, mismatches = [], []
    # Successful calls change state (logout, password change), so each caller runs its
    # failing cases first and its one successful case last.
    for caller in CALLERS:
        ref, headers = callers[caller]
        for scope in sorted(ep.scopes, key=lambda s: expected(ep, caller, s) == ep.success):
            path = "/api/v1" + ep.path.format(**ids_for(cast, scope))
            body = ep.body(cast, ref) if callable(ep.body) else ep.body
            kwargs = {"json": body} if body is not None else {}
            r = client.open(path, method=ep.method, headers=headers, **kwargs)
            want = expected(ep, caller, scope)
            table.append(f"{caller:>16} {scope:<26} {r.status_code} (want {want})")
            if r.status_code != want:
                mismatches.append(table[-1])
            elif want >= 400:
                assert r.mimetype == "application/problem+json" and r.get_json()["status"] == want
                if want == 401:
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert not mismatches, "\n".join([ep.name, *mismatches])


def test_every_platform_route_is_in_the_matrix(app):
    """A new platform endpoint without a row here fails this test."""
    covered = {(e.method, "/api/v1" + e.path.replace("{team}", "<team_id>").replace("{user}", "<user_id>"))
               for e in ENDPOINTS}
    platform = ("/api/v1/auth", "/api/v1/me", "/api/v1/users", "/api/v1/teams", "/api/v1/audit")
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(platform) and not rule.rule.endswith("/report"):
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((method, rule.rule))
    routes.discard(("POST", "/api/v1/auth/token"))  # client credentials: the clients helper's
    assert routes == covered


def test_no_route_lists_options_explicitly(app):
    """flask-jwt-extended skips authentication for OPTIONS, so no view may accept it itself:
    Flask answers OPTIONS on its own (an empty 200 with ``Allow``) for every API route."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            assert rule.provide_automatic_options is True, rule.rule


def test_options_reveals_nothing(client, cast):
    r = client.options(f"/api/v1/users/{cast.coach.id}")
    assert r.status_code == 200 and r.get_data() == b""
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "PATCH"}
