"""Every response the test suite receives is checked against ``openapi.yaml``.

``ValidatingClient`` is Flask's test client plus one step: after each request it finds the
operation (by the matched Flask rule), requires the status to be documented, the content type to
be one the document lists, documented required headers to be present, and the JSON body to
validate against the documented schema (JSON Schema 2020-12, ``$ref`` resolved in the document).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from werkzeug.exceptions import MethodNotAllowed, NotFound

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
URN = "urn:rapportnotes:openapi"
API_PREFIX = "/api/v1"
_JSON = ("application/json", "application/problem+json")


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resource(URN, DRAFT202012.create_resource(spec()))


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def _resolve(pointer: str) -> Any:
    node: Any = spec()
    for part in pointer.lstrip("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@lru_cache(maxsize=512)
def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": URN + pointer}, registry=_registry(),
                                format_checker=FormatChecker())


def spec_path_for(rule: str) -> str | None:
    """``/api/v1/contacts/<contact_id>`` -> ``/contacts/{contact_id}``; root paths kept as is."""
    tpl = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)
    if tpl.startswith(API_PREFIX):
        tpl = tpl[len(API_PREFIX):] or "/"
    return tpl if tpl in spec()["paths"] else None


def check_response(app: Any, method: str, path: str, response: Any) -> None:
    adapter = app.url_map.bind("localhost")
    try:
        rule, _ = adapter.match(path, method=method, return_rule=True)
    except MethodNotAllowed:
        if path.startswith(API_PREFIX):
            assert response.status_code == 405, (method, path, response.status_code)
            assert response.mimetype == "application/problem+json"
        return
    except NotFound:
        return
    tpl = spec_path_for(rule.rule)
    if tpl is None:
        assert not rule.rule.startswith(API_PREFIX), f"{rule.rule} is routed but not in openapi.yaml"
        return
    status = str(response.status_code)
    if method in ("HEAD", "OPTIONS"):
        return
    op = spec()["paths"][tpl].get(method.lower())
    assert op is not None, f"{method} {tpl} is routed but not in openapi.yaml"
    if status == "500":  # never documented per operation, but always a bare problem document
        _check_body("#/components/schemas/Problem", response, as_schema=True)
        return
    responses = op["responses"]
    assert status in responses, (
        f"{method} {tpl} answered {status}, which openapi.yaml does not document "
        f"(documented: {sorted(responses)}); body: {response.get_data(as_text=True)[:300]}")
    pointer = "#/" + "/".join(_escape(p) for p in ("paths", tpl, method.lower(), "responses", status))
    doc = responses[status]
    if "$ref" in doc:
        pointer, doc = doc["$ref"], _resolve(doc["$ref"])
    for name, header in (doc.get("headers") or {}).items():
        if "$ref" in header:
            header = _resolve(header["$ref"])
        if header.get("required"):
            assert name in response.headers, f"{method} {tpl} {status}: missing header {name}"
    content = doc.get("content")
    if not content:
        assert not response.get_data(), f"{method} {tpl} {status}: undocumented body"
        return
    mimetype = response.mimetype
    assert mimetype in content, f"{method} {tpl} {status}: content type {mimetype} not in {list(content)}"
    if mimetype in _JSON:
        _check_body(f"{pointer}/content/{_escape(mimetype)}/schema", response)


def _check_body(pointer: str, response: Any, as_schema: bool = False) -> None:
    body = response.get_json(silent=True)
    assert body is not None, f"response body is not JSON: {response.get_data(as_text=True)[:200]}"
    errors = sorted(_validator(pointer).iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "response does not match openapi.yaml: " + "; ".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:5])


class ValidatingClient(FlaskClient):
    def open(self, *args: Any, **kwargs: Any) -> Any:
        response = super().open(*args, **kwargs)
        request = response.request
        check_response(self.application, request.method, request.path, response)
        return response
