"""Login, token refresh (rotating) and logout."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, current_app, g, request
from flask_jwt_extended import decode_token, get_jwt, verify_jwt_in_request
from sqlalchemy import select, update
from werkzeug.exceptions import HTTPException

from rapportnotes.api.common import actor_for, load_body
from rapportnotes.attempts import only_failures_count
from rapportnotes.errors import ApiError
from rapportnotes.extensions import db, limiter
from rapportnotes.jsonbody import loads_strict
from rapportnotes.models import User
from rapportnotes.schemas.auth import LoginIn, LogoutIn
from rapportnotes.security import me, token_refused, unauthorized, writes_take_no_query
from rapportnotes.services import passwords, tokens
from rapportnotes.services.audit import record_event

bp = Blueprint("auth", __name__, url_prefix="/auth")
log = logging.getLogger("rapportnotes.auth")


def _login_email() -> str:
    """Rate-limit key: the email being tried, normalised; the address when there is none."""
    try:
        body = loads_strict(request.get_data(cache=True))
        email = body.get("email") if isinstance(body, dict) else None
    except (ValueError, HTTPException):  # 413, a client gone mid-body: the view answers those
        # Raised here, flask-limiter takes it for a storage outage and switches this process's
        # limits from Redis to its empty in-memory counters.
        email = None
    if isinstance(email, str) and email:
        return "login-email:" + email.strip().lower()[:254]
    return "login-email-missing:" + (request.remote_addr or "unknown")


def _failed(response) -> bool:  # successful logins do not count against the limits
    return response.status_code == 401


def _email_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_EMAIL"]


def _address_limit() -> str:
    return current_app.config["LOGIN_LIMIT_PER_ADDRESS"]


@bp.post("/login")
@limiter.limit(_email_limit, key_func=_login_email)
@limiter.limit(_address_limit)
@only_failures_count(_failed)
def login():
    writes_take_no_query()
    data = load_body(LoginIn())
    email = data["email"].strip().lower()
    user = db.session.scalar(select(User).where(User.email == email))  # stored lower-case
    ok = passwords.verify_password(user.password_hash if user else None, data["password"])
    if user is None:
        log.info("login failed for unknown email", extra={"fields": {"request_id": g.get("request_id")}})
        raise unauthorized()
    actor = actor_for(user)
    if not ok or not user.is_active:
        record_event(db.session, actor, "auth.login", target_type="user", target_id=user.id,
                     status=401)
        db.session.commit()
        raise unauthorized()
    if passwords.needs_rehash(user.password_hash):
        # Over the hash just verified only: a reset or change that committed meanwhile stays.
        db.session.execute(
            update(User)
            .where(User.organisation_id == user.organisation_id, User.id == user.id,
                   User.password_hash == user.password_hash)
            .values(password_hash=passwords.hash_password(data["password"]))
            .execution_options(synchronize_session=False)
        )
    pair = tokens.issue_pair(db.session, user, current_app.config["JWT_ACCESS_TOKEN_EXPIRES"])
    g.rn_log_user_id = user.id  # no token came with this request: the log line names who signed in
    record_event(db.session, actor, "auth.login", target_type="user", target_id=user.id)
    db.session.commit()
    return pair.as_json()


@bp.post("/refresh")
def refresh():
    verify_jwt_in_request(refresh=True)
    writes_take_no_query()
    user = me()
    jti = get_jwt()["jti"]
    try:
        pair = tokens.rotate(db.session, user, jti, current_app.config["JWT_ACCESS_TOKEN_EXPIRES"])
    except tokens.RefreshReused:
        record_event(db.session, actor_for(user), "auth.refresh_reuse", target_type="user",
                     target_id=user.id, status=401)
        db.session.commit()
        raise token_refused("The refresh token was already used; its session has been ended.")
    record_event(db.session, actor_for(user), "auth.refresh", target_type="user",
                 target_id=user.id)
    db.session.commit()
    return pair.as_json()


@bp.post("/logout")
def logout():
    verify_jwt_in_request()
    writes_take_no_query()
    user = me()
    claims = get_jwt()
    data = load_body(LogoutIn()) if request.get_data(cache=True) else {}
    if not tokens.revoke_access_token(db.session, user, claims["jti"],
                                      datetime.fromtimestamp(claims["exp"], UTC)):
        # A concurrent logout with the same token revoked it first: as if this one came after.
        db.session.rollback()
        raise token_refused("The token has been revoked.")
    refresh = data.get("refresh_token")
    if refresh:
        try:
            decoded = decode_token(refresh)
        except Exception:
            decoded = None
        if (decoded is None or decoded.get("type") != "refresh"
                or not tokens.revoke_refresh_token(db.session, user, decoded["jti"])):
            raise ApiError(422, "The refresh token is not valid.",
                           errors={"refresh_token": ["Not a valid refresh token of yours."]})
    record_event(db.session, actor_for(user), "auth.logout", target_type="user",
                 target_id=user.id, status=204)
    db.session.commit()
    return "", 204
