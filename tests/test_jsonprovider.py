"""Responses encoded by orjson (``rapportnotes.jsonprovider``) say what Flask's own provider says:
the same values, keys in the same order, Flask's rules for dates, decimals and dataclasses, and
Flask's encoder for what orjson cannot encode."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from rapportnotes.jsonprovider import OrjsonProvider


@dataclasses.dataclass
class _Point:
    x: int
    when: date


DOCUMENTS = {
    "report-like": {"totals": {"contacts": 3, "mean_peer_rating": 7.25}, "behaviours": [
        {"code": "empathy", "share": 0.3333, "count": 1}], "from": "2026-01-01", "coach": None},
    "text": {"name": "Émile Zoë — 日本 \u2028 \"quoted\" \\ \t", "empty": ""},
    "numbers": {"small": 0.0001, "tiny": 1e-7, "big": 1e16, "neg": -3, "zero": 0.0, "true": True},
    "types": {"id": uuid.UUID("12345678-1234-5678-1234-567812345678"), "day": date(2026, 3, 29),
              "at": datetime(2026, 3, 29, 1, 30, tzinfo=UTC), "amount": Decimal("1.10"),
              "point": _Point(1, date(2026, 1, 2))},
    "list": [3, {"b": 1, "a": 2}, None],
    "huge-integer": {"n": 2**70},
}


@pytest.fixture()
def flask_app():
    app = Flask(__name__)
    app.json = OrjsonProvider(app)
    return app


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_a_response_says_what_flasks_provider_says(flask_app, name):
    doc = DOCUMENTS[name]
    with flask_app.app_context():
        ours = flask_app.json.response(doc)
        theirs = DefaultJSONProvider(flask_app).response(doc)
    assert ours.mimetype == theirs.mimetype == "application/json"
    assert ours.get_data().endswith(b"\n")
    assert json.loads(ours.get_data()) == json.loads(theirs.get_data())
    # The same key order (Flask sorts keys), compared as text with any escapes undone.
    assert json.dumps(json.loads(ours.get_data())) == json.dumps(json.loads(theirs.get_data()))


def test_text_is_sent_as_utf8(flask_app):
    with flask_app.app_context():
        body = flask_app.json.response({"name": "Émile"}).get_data()
    assert body == '{"name":"Émile"}\n'.encode()


def test_debug_responses_are_indented_as_before(flask_app):
    flask_app.debug = True
    with flask_app.app_context():
        body = flask_app.json.response({"b": 1, "a": [1]}).get_data(as_text=True)
    assert body == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'


def test_what_json_cannot_say_is_still_an_error(flask_app):
    with flask_app.app_context(), pytest.raises(TypeError):
        flask_app.json.response({"x": object()})


def test_the_app_uses_it(app):
    assert isinstance(app.json, OrjsonProvider)
