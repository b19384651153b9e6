"""The rapport taxonomy: everyone reads it; admins add and retire behaviours."""

from __future__ import annotations

from flask import Blueprint, url_for
from sqlalchemy.exc import IntegrityError

from rapportnotes.api.common import actor_for, load_body, query_args
from rapportnotes.extensions import db
from rapportnotes.models import Behaviour
from rapportnotes.schemas.behaviour import BehaviourIn, BehaviourOut, BehaviourPatch
from rapportnotes.security import authenticated, me, roles_required
from rapportnotes.services import behaviours as svc
from rapportnotes.services.audit import record_event

bp = Blueprint("behaviours", __name__, url_prefix="/behaviours")
_out = BehaviourOut()


@bp.get("")
@authenticated
def list_():
    query_args(set())
    return {"items": [_out.dump(b) for b in svc.list_behaviours(db.session, me().organisation_id)]}


@bp.post("")
@roles_required("admin")
def create():
    admin = me()
    data = load_body(BehaviourIn())
    b = svc.add_behaviour(db.session, admin.organisation_id, data)
    try:
        record_event(db.session, actor_for(admin), "behaviour.create", target_type="behaviour",
                     target_id=b.code, status=201)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if db.session.get(Behaviour, (admin.organisation_id, data["code"])) is not None:
            raise svc.code_taken()  # a concurrent request added the same code first
        raise
    return _out.dump(b), 201, {"Location": url_for("api.behaviours.get", code=b.code)}


@bp.get("/<code>")
@authenticated
def get(code: str):
    """One behaviour of the caller's organisation (retired ones too): where POST's Location points."""
    query_args(set())
    return _out.dump(svc.get_behaviour(db.session, me().organisation_id, code))


@bp.patch("/<code>")
@roles_required("admin")
def update(code: str):
    admin = me()
    b = svc.get_behaviour(db.session, admin.organisation_id, code)
    data = load_body(BehaviourPatch())
    for field, value in data.items():
        setattr(b, field, value)
    record_event(db.session, actor_for(admin), "behaviour.update", target_type="behaviour",
                 target_id=b.code)
    db.session.commit()
    return _out.dump(b)
