"""Authentication and authorization rules, all in one place.

* every flask-jwt-extended callback, so each token failure is a 401 problem+json with
  ``WWW-Authenticate`` (the library's default is 422 ``{"msg": ...}``);
* tokens must carry ``exp, iat, jti, type, sub`` and match ``iss``/``aud``;
* the user is loaded from the database on every request: role and organisation never come
  from claims, and an inactive user or a stale token generation is refused;
* role gates and "may this user see that coach" for the views.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, wraps
from typing import Any, TypeVar

from flask import Flask, Response, g, request
from flask_jwt_extended import current_user, decode_token, get_jwt, verify_jwt_in_request
from sqlalchemy import ARRAY, CTE, BindParameter, Select, and_, any_, bindparam, exists, or_, select, true

from rapportnotes.errors import ApiError, problem
from rapportnotes.extensions import db, jwt
from rapportnotes.models import Organisation, RevokedToken, TeamMember, User
from rapportnotes.services import tokens

REQUIRED_CLAIMS = ("exp", "iat", "jti", "type", "sub", "iss", "aud", "org", "gen")
_JTI = re.compile(r"^[\x21-\x7e]{1,64}\Z")
_YEAR_10000 = 253402300800  # seconds since the epoch

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class OrganisationRef:
    id: uuid.UUID
    name: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated user as read for this request: a plain value, not an ORM object.

    Every request loads it, so it comes from one prebuilt Core query (no ORM identity map,
    no per-request statement building); a view that changes the user's own row loads the
    ``User`` explicitly (see ``account``).
    """

    id: uuid.UUID
    organisation_id: uuid.UUID
    email: str
    display_name: str
    role: str
    is_active: bool
    token_generation: int
    created_at: datetime
    organisation: OrganisationRef


@dataclass(frozen=True, slots=True)
class TokenCaller:
    """Who a verified access token says is calling, before the database has confirmed it.

    Only views marked ``checks_caller_itself`` see this instead of a ``Principal``: their one
    statement re-checks the same conditions as ``_load_principal`` (``checked_caller``),
    and anything else they do first goes through ``require_caller``.
    """

    id: uuid.UUID
    organisation_id: uuid.UUID
    token_generation: int
    jti: str


@cache
def _principal_statement() -> Select[Any]:
    """User, organisation and access-token revocation in one round trip. For refresh tokens the
    ``jti`` is bound as NULL (they are checked against their own table), so ``revoked`` is false."""
    u, o = User.__table__.c, Organisation.__table__.c
    revoked = exists().where(
        RevokedToken.__table__.c.organisation_id == bindparam("org", type_=User.organisation_id.type),
        RevokedToken.__table__.c.jti == bindparam("jti", type_=RevokedToken.jti.type))
    return (
        select(u.id, u.organisation_id, u.email, u.display_name, u.role, u.is_active,
               u.token_generation, u.created_at, o.name, o.timezone, revoked.label("revoked"))
        .select_from(User.__table__.join(Organisation.__table__, o.id == u.organisation_id))
        .where(u.organisation_id == bindparam("org", type_=User.organisation_id.type),
               u.id == bindparam("uid", type_=User.id.type))
    )


def checked_caller(org: BindParameter[Any], uid: BindParameter[Any]) -> CTE:
    """``caller`` (id, role) for statements that check the caller themselves: the user ``uid`` of
    ``org`` only if they are active, their role is one of ``:roles``, they are on the token's
    ``:generation``, the token ``:jti`` is not revoked and the organisation's zone is still
    ``:timezone`` (what the request computed dates with): the same checks as ``_load_principal``.
    """
    u, o, r = User.__table__, Organisation.__table__, RevokedToken.__table__
    return (
        select(u.c.id, u.c.role)
        .select_from(u.join(o, o.c.id == u.c.organisation_id))
        .where(u.c.organisation_id == org, u.c.id == uid, u.c.is_active,
               u.c.role == any_(bindparam("roles", type_=ARRAY(u.c.role.type))),
               u.c.token_generation == bindparam("generation", type_=u.c.token_generation.type),
               ~exists().where(r.c.organisation_id == org, r.c.jti == bindparam("jti", type_=r.c.jti.type)),
               o.c.timezone == bindparam("timezone", type_=o.c.timezone.type))
        .cte("caller")
    )


# The zone each organisation had when this process last loaded one of its users. Only a hint
# for the statements that check the caller themselves: they compare it with the organisation's
# zone and store or return nothing if it changed (the view then takes the ordinary path, which
# loads the caller and so refreshes it), so a stale entry costs a retry, never a wrong date.
_zones: dict[uuid.UUID, str] = {}


def known_zone(organisation_id: uuid.UUID) -> str | None:
    return _zones.get(organisation_id)


def _challenge(detail: str, error: str) -> dict[str, str]:
    challenge = f'Bearer error="{error}", error_description="{detail}"' if error else "Bearer"
    return {"WWW-Authenticate": challenge}


def _unauthorized(detail: str, error: str = "invalid_token") -> Response:
    return problem(401, detail, headers=_challenge(detail, error))


_STALE_TOKEN = "The token is no longer valid."


def token_refused(detail: str) -> ApiError:
    """A token that verified but no longer holds (revoked, or its session ended): 401."""
    return ApiError(401, detail, headers=_challenge(detail, "invalid_token"))


def unauthorized(detail: str = "Invalid credentials.") -> ApiError:
    """Bad credentials at login: a 401 with a plain Bearer challenge."""
    return ApiError(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _raw_token() -> str | None:
    """The bearer token exactly as flask-jwt-extended finds it (``_decode_jwt_from_headers``):
    the header is a comma-separated list (surrounding commas dropped) in which exactly one item
    is ``Bearer <token>``. Reading it any other way lets ``Bearer <token>,`` authenticate while
    ``signed_subject`` (the password-change limit's key) and ``_raw_claims`` see another string."""
    header = request.headers.get("Authorization", "").strip().strip(",")
    items = [s for s in re.split(r",\s*", header) if [w.lower() for w in s.split()[:1]] == ["bearer"]]
    if len(items) != 1:
        return None
    parts = items[0].split()
    return parts[1] if len(parts) == 2 else None


def init_app(app: Flask) -> None:
    @app.before_request
    def _bearer_scheme_is_case_insensitive() -> None:
        """RFC 9110 section 11.1: the scheme is case-insensitive (``bearer x`` is ``Bearer x``),
        but flask-jwt-extended only finds a token after exactly ``JWT_HEADER_TYPE``."""
        header = request.environ.get("HTTP_AUTHORIZATION")
        if header and re.search(r",\s*\S", header):
            # An item that is only whitespace (``, , Bearer t``) makes flask-jwt-extended's
            # ``s.split()[0]`` raise IndexError: a 500 instead of a 401. Drop such items.
            items = re.split(r",\s*", header.strip().strip(","))
            header = ", ".join(item for item in items if item.strip())
            request.environ["HTTP_AUTHORIZATION"] = header
        if header:
            parts = header.strip().split(None, 1)
            if len(parts) == 2 and parts[0] != "Bearer" and parts[0].lower() == "bearer":
                request.environ["HTTP_AUTHORIZATION"] = "Bearer " + parts[1]

    @jwt.unauthorized_loader
    def _missing(reason: str) -> Response:
        return _unauthorized("A bearer token is required.", error="")

    @jwt.invalid_token_loader
    def _invalid(reason: str) -> Response:
        return _unauthorized("The token is invalid.")

    @jwt.expired_token_loader
    def _expired(header: dict, payload: dict) -> Response:
        return _unauthorized("The token has expired.")

    @jwt.revoked_token_loader
    def _revoked(header: dict, payload: dict) -> Response:
        return _unauthorized("The token has been revoked.")

    @jwt.needs_fresh_token_loader
    def _needs_fresh(header: dict, payload: dict) -> Response:
        return _unauthorized("A fresh token is required.")

    @jwt.token_verification_failed_loader
    def _verification_failed(header: dict, payload: dict) -> Response:
        return _unauthorized("The token is incomplete.")

    @jwt.user_lookup_error_loader
    def _lookup_failed(header: dict, payload: dict) -> Response:
        return _unauthorized(_STALE_TOKEN)

    @jwt.token_verification_loader
    def _complete(header: dict, payload: dict) -> bool:
        # flask-jwt-extended fills in a missing ``type``/``jti`` with defaults, so look at the
        # claims as sent. The signature has already been verified: reading the payload segment
        # directly is enough (and cheaper than a second full decode).
        claims = _raw_claims()
        if claims is None or any(c not in claims for c in REQUIRED_CLAIMS):
            return False
        # The shapes we issue, exactly: the signature only proves who signed, so a token signed
        # with our key but shaped otherwise (a ``type`` we never issue, ``gen: false``, an ``exp``
        # as text or past year 9999, a ``jti`` holding NUL) must not reach the database or a date.
        return (claims["type"] in ("access", "refresh")
                and isinstance(claims["sub"], str) and isinstance(claims["org"], str)
                and isinstance(claims["jti"], str) and _JTI.match(claims["jti"]) is not None
                and type(claims["gen"]) is int
                and type(claims["exp"]) is int and 0 < claims["exp"] < _YEAR_10000)

    @jwt.token_in_blocklist_loader
    def _blocked(header: dict, payload: dict) -> bool:
        jti = payload.get("jti")
        if not jti:
            return True
        if payload.get("type") == "refresh":
            try:
                org = uuid.UUID(payload["org"])
            except (KeyError, ValueError, TypeError, AttributeError):
                return True
            return not tokens.is_refresh_usable(db.session, org, jti)
        return False  # access tokens: checked together with the user, in one query (below)

    @jwt.user_lookup_loader
    def _load_user(header: dict, payload: dict) -> Principal | TokenCaller | None:
        """The user, fresh from the database, in the same query as the revocation check (or,
        for a view that checks the caller itself, the token's word for now)."""
        try:
            uid, org = uuid.UUID(payload["sub"]), uuid.UUID(payload["org"])
        except (KeyError, ValueError, TypeError, AttributeError):
            return None
        if g.get("rn_caller_checked_by_view") and payload.get("type") == "access":
            return TokenCaller(uid, org, payload["gen"], payload["jti"])
        jti = None if payload.get("type") == "refresh" else payload.get("jti")
        return _load_principal(uid, org, payload.get("gen"), jti)


def _load_principal(uid: uuid.UUID, org: uuid.UUID, gen: Any, jti: str | None) -> Principal | None:
    """The caller if the user exists, is active, is on the token's generation and the access
    token ``jti`` (None for refresh tokens) is not revoked."""
    params = {"org": org, "uid": uid, "jti": jti}
    row = db.session.connection().execute(_principal_statement(), params).first()
    if row is not None:
        _zones[row.organisation_id] = row.timezone
    if row is None or row.revoked or not row.is_active or row.token_generation != gen:
        return None
    return Principal(row.id, row.organisation_id, row.email, row.display_name, row.role,
                     row.is_active, row.token_generation, row.created_at,
                     OrganisationRef(row.organisation_id, row.name, row.timezone))


def _raw_claims() -> dict[str, Any] | None:
    raw = _raw_token()
    if raw is None or raw.count(".") != 2:
        return None
    segment = raw.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def signed_subject() -> str | None:
    """The ``sub`` of the request's bearer token when it is an access token whose signature and
    claims verify (the database is not asked): for a rate-limit key, which must exist before the
    view's own checks, and must not let a forged token learn about the account it names."""
    if "rn_signed_subject" not in g:
        raw = _raw_token()
        try:
            claims = decode_token(raw) if raw else {}
        except Exception:  # any token that does not verify
            claims = {}
        sub = claims.get("sub")
        g.rn_signed_subject = sub if claims.get("type") == "access" and isinstance(sub, str) else None
    return g.rn_signed_subject


def writes_take_no_query() -> None:
    """A write (anything but GET and HEAD) takes no query parameters: any is a 422 (openapi.yaml,
    Conventions). Called once the caller has been checked, so a refused caller hears that first;
    GET views allow-list their own parameters with ``query_args``."""
    if request.method not in ("GET", "HEAD") and request.args:
        from rapportnotes.api.common import query_args  # the API layer imports this module

        query_args(set())


def authenticated(fn: F) -> F:
    """Require a valid access token (never listing OPTIONS: the library would skip the check)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        verify_jwt_in_request()
        writes_take_no_query()
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def roles_required(*roles: str) -> Callable[[F], F]:
    """Require a valid access token and one of ``roles``; any other role gets 403."""

    def decorator(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            verify_jwt_in_request()
            require_caller(*roles)
            writes_take_no_query()
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def checks_caller_itself(fn: F) -> F:
    """Verify the access token but leave the database check of the caller to the view.

    For the hottest endpoints only (``POST /contacts`` and the coach report on PostgreSQL): their
    single statement stores and returns nothing unless the caller passes ``checked_caller``,
    which saves round trips per request. The view must call ``require_caller`` before doing
    anything else, and whenever that statement stores or returns nothing, so every refusal is
    the same 401, 403 or 404 as elsewhere, in the same order.
    """

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        g.rn_caller_checked_by_view = True
        verify_jwt_in_request()
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def token_caller() -> TokenCaller:
    """The caller as the verified access token names them."""
    claims = get_jwt()
    return TokenCaller(uuid.UUID(claims["sub"]), uuid.UUID(claims["org"]), claims["gen"], claims["jti"])


def require_caller(*roles: str) -> Principal:
    """The caller, checked against the database now: 401 if the token no longer holds, 403 if
    their role is not one of ``roles``."""
    user = g.get("rn_principal") or current_user
    if isinstance(user, TokenCaller):
        user = _load_principal(user.id, user.organisation_id, user.token_generation, user.jti)
        if user is None:
            raise token_refused(_STALE_TOKEN)
        g.rn_principal = user
    if user.role not in roles:
        raise ApiError(403, "Your role may not use this endpoint.")
    return user


def me() -> Principal:
    """The authenticated user, loaded fresh from the database for this request."""
    return g.get("rn_principal") or current_user  # type: ignore[return-value]


def account() -> User:
    """The authenticated user's own row, for the few views that change it.

    Loaded again (to change it), so checked again: a deactivation or password change that
    committed since this request's token was checked has ended the token, and the view must not
    act on it (its compare-and-set would otherwise start from the new generation)."""
    p = me()
    user = db.session.get(User, (p.organisation_id, p.id))
    if user is None or not user.is_active or user.token_generation != p.token_generation:
        raise token_refused(_STALE_TOKEN)
    return user


def token_claims() -> dict[str, Any]:
    return get_jwt()


def supervised_coach_ids(user: Principal) -> set[uuid.UUID]:
    """Coaches in the teams where ``user`` is a supervisor member (same organisation only)."""
    sup = TeamMember.__table__.alias("sup")
    mem = TeamMember.__table__.alias("mem")
    rows = db.session.execute(
        select(mem.c.user_id)
        .select_from(sup.join(mem, (mem.c.team_id == sup.c.team_id)
                              & (mem.c.organisation_id == sup.c.organisation_id)))
        .where(
            sup.c.organisation_id == user.organisation_id,
            sup.c.user_id == user.id,
            sup.c.role == "supervisor",
            mem.c.role == "coach",
        )
    )
    return {r[0] for r in rows}


def readable_coach(org: BindParameter[Any], coach: BindParameter[Any], caller: CTE) -> CTE:
    """``subject`` (id, display_name): the user ``coach`` of ``org`` only if ``caller`` (see
    ``checked_caller``) may read their report: the rules of ``may_see_coach``, and never an
    admin. For statements that check their caller themselves."""
    u, tm = User.__table__, TeamMember.__table__
    s, sup, mem = u.alias("s"), tm.alias("sup"), tm.alias("mem")
    supervises = exists().where(
        sup.c.organisation_id == org, sup.c.user_id == caller.c.id, sup.c.role == "supervisor",
        mem.c.organisation_id == org, mem.c.team_id == sup.c.team_id, mem.c.user_id == s.c.id,
        mem.c.role == "coach",
    )
    return (
        select(s.c.id, s.c.display_name)
        .select_from(s.join(caller, true()))
        .where(s.c.organisation_id == org, s.c.id == coach, s.c.role != "admin",
               or_(caller.c.role == "admin", s.c.id == caller.c.id,
                   and_(caller.c.role == "supervisor", supervises)))
        .cte("subject")
    )


def may_see_coach(user: Principal, coach_id: uuid.UUID) -> bool:
    """Admins see everyone in their organisation; supervisors themself and their coaches.
    ``readable_coach`` is the same rule in SQL: change both together (tests run both ways)."""
    if user.role == "admin":
        return True
    if coach_id == user.id:
        return True
    if user.role == "supervisor":
        return coach_id in supervised_coach_ids(user)
    return False


def supervises_team(user: Principal, team_id: uuid.UUID) -> bool:
    return (
        db.session.scalar(
            select(TeamMember.user_id).where(
                TeamMember.organisation_id == user.organisation_id,
                TeamMember.team_id == team_id,
                TeamMember.user_id == user.id,
                TeamMember.role == "supervisor",
            )
        )
        is not None
    )


def parse_id(value: str, what: str = "resource") -> uuid.UUID:
    """Path ids are opaque; anything that is not one of ours is simply not found."""
    try:
        return uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise ApiError(404, f"No such {what}.")
