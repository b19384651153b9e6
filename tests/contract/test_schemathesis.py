"""Schema-driven fuzzing: schemathesis generates requests from openapi.yaml (valid and invalid)
for every operation, as every role, in-process, and runs all of its default checks on each
response (no server errors, documented statuses, content types, headers and bodies, positive
data accepted, negative data rejected, auth not ignored).

Half of the generated requests keep schemathesis' random path ids (which must be 404s); the other
half point at real resources of the caller's organisation, so bodies are fuzzed against live rows.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import negative_data_rejection

from tests.support.openapi_validation import spec

SCHEMA = schemathesis.openapi.from_dict(spec())
# Semantic rules a JSON schema cannot state (taxonomy membership, "not in the future",
# ownership, one's own coach_id, uniqueness, If-Match) answer 422/412/409 to schema-valid data.
# They are documented in openapi.yaml; accept them as rejections of valid-looking data.
SCHEMA.config.checks.positive_data_acceptance.expected_statuses = [
    "2xx", "401", "403", "404", "409", "412", "422", "429"]
SKIP_OPS = {"GET /healthz", "GET /readyz"}  # served outside /api/v1 (path-level servers)
# Operations described in openapi.yaml but not routed yet (they would only 404): not fuzzed
# until built. Empty now that every documented operation is routed; the route-parity test
# keeps failing for anything listed here, so this set can only hide work, never a mismatch.
PENDING_OPERATIONS: set[str] = set()
OPERATIONS = [r.ok() for r in SCHEMA.get_all_operations()
              if r.ok().label not in SKIP_OPS | PENDING_OPERATIONS]
if PENDING_OPERATIONS:
    print("schemathesis: not fuzzed yet (pending):", ", ".join(sorted(PENDING_OPERATIONS)))
ROLES = ["admin", "supervisor", "coach"]


def _real_ids(client, cast, user) -> dict[str, str]:
    contact = client.post("/api/v1/contacts", headers=cast.coach.headers, json={
        "peer_ref": "FUZZ-1", "occurred_at": "2025-05-05T10:00:00Z", "duration_minutes": 20,
        "modality": "phone", "behaviours": ["hope"]}).get_json()
    return {"contact_id": contact["id"], "user_id": cast.coach.id, "coach_id": cast.coach.id,
            "team_id": cast.team, "code": "hope"}


def only_replaced_auth_invalid(case) -> bool:
    """The case is negative only in the Authorization header the harness replaces (a negative
    query whose every value is an empty list is not sent at all, so it does not count)."""
    meta = case.meta
    if not meta.is_negative_at(ParameterLocation.HEADER):
        return False
    if {k.lower() for k in case.headers or {}} - {"authorization"}:
        return False
    if any(meta.is_negative_at(loc) for loc in
           (ParameterLocation.PATH, ParameterLocation.BODY, ParameterLocation.COOKIE)):
        return False
    query_sent = any(v not in ([], ()) for v in (case.query or {}).values())
    return not (meta.is_negative_at(ParameterLocation.QUERY) and query_sent)


def _has_inputs(operation) -> bool:
    definition = operation.definition.raw
    return bool(definition.get("parameters") or definition.get("requestBody")
                or operation.path_parameters)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_fuzz(app, client, world, cast, operation, role, mode):
    if mode == GenerationMode.NEGATIVE and not _has_inputs(operation):
        return  # nothing to make invalid (GET /openapi.yaml, GET /me, ...): the valid run covers it
    SCHEMA.app = app  # every request, including the checks' own follow-ups, goes in-process (WSGI)
    user = getattr(cast, role)
    real = _real_ids(client, cast, user)

    @settings(max_examples=10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), use_real=st.booleans())
    def run(case, use_real):
        world.login(user)  # logout, password changes and resets may have ended the last token
        # A real id would make a case whose invalid part is its path valid.
        if use_real and case.path_parameters and not case.meta.is_negative_at(ParameterLocation.PATH):
            case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}
        headers = {"Authorization": f"Bearer {user.access_token}"}
        if operation.label == "POST /auth/refresh":
            headers = {"Authorization": f"Bearer {user.refresh_token}"}
        response = case.call(headers=headers, app=app)
        # The headers above replace a generated (invalid or missing) Authorization: a case whose
        # only invalid part was that header may be valid as sent. Any other invalid part (a body,
        # a path, a query that is sent) is still judged.
        undone = [negative_data_rejection] if only_replaced_auth_invalid(case) else []
        case.validate_response(response, headers=headers, transport_kwargs={"app": app},
                               excluded_checks=undone)

    run()
