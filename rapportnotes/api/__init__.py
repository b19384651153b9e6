"""The ``/api/v1`` blueprint: one module per resource, registered on one parent."""

from flask import Blueprint, Flask


def register(app: Flask) -> None:
    from rapportnotes.api import audit, auth, behaviours, contacts, docs, me, ops, reports, teams, users

    api = Blueprint("api", __name__, url_prefix="/api/v1")
    for module in (auth, me, users, teams, behaviours, contacts, reports, audit, docs):
        api.register_blueprint(module.bp)
    app.register_blueprint(api)
    app.register_blueprint(ops.bp)
    app.register_blueprint(docs.site)
