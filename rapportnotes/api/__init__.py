"""The ``/api/v1`` blueprint: one module per resource, registered on one parent."""

from flask import Blueprint, Flask


def register(app: Flask) -> None:
    from rapportnotes.api import audit, auth, docs, me, ops, teams, users

    api = Blueprint("api", __name__, url_prefix="/api/v1")
    for module in (auth, me, users, teams, audit, docs):
        api.register_blueprint(module.bp)
    for module in _optional_modules():
        api.register_blueprint(module.bp)
    app.register_blueprint(api)
    app.register_blueprint(ops.bp)
    app.register_blueprint(docs.site)


def _optional_modules() -> list:
    """Resource modules added by later features (contacts, behaviours, reports)."""
    import importlib

    found = []
    for name in ("behaviours", "contacts", "reports"):
        try:
            found.append(importlib.import_module(f"rapportnotes.api.{name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"rapportnotes.api.{name}":
                raise
    return found
