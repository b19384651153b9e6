"""openapi.yaml is a valid OpenAPI 3.1 document and the app serves exactly that file."""

from openapi_spec_validator import validate

from tests.support.openapi_validation import SPEC_PATH, spec


def test_document_is_valid_openapi():
    validate(spec())
    assert spec()["openapi"].startswith("3.1")


def test_served_document_is_the_committed_file(client):
    r = client.get("/api/v1/openapi.yaml")
    assert r.status_code == 200 and r.mimetype == "application/yaml"
    assert r.get_data() == SPEC_PATH.read_bytes()


def test_docs_page_uses_local_assets_only(client):
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    for stock in ("index.html", "swagger-initializer.js"):  # the stock page loads the petstore
        assert client.get(f"/docs/assets/{stock}").status_code == 404
    init = client.get("/docs/init.js")
    assert init.status_code == 200
    assert "validatorUrl: null" in init.get_data(as_text=True)  # else a validator.swagger.io badge


def test_document_states_the_reserved_behaviour_codes_the_app_refuses():
    """The ``not: enum`` on a new behaviour's code is written out by hand: it must stay the set
    the app refuses (a column added to a report CSV adds a reserved code), or clients validating
    against the document send codes that are a 422, or refuse ones the app takes."""
    from rapportnotes.services.report_csv import RESERVED_CODES

    code = spec()["components"]["schemas"]["BehaviourCreate"]["properties"]["code"]
    assert sorted(code["not"]["enum"]) == sorted(RESERVED_CODES)


def test_document_states_the_query_limits_the_app_applies():
    from rapportnotes.api import common

    cursor = spec()["components"]["parameters"]["Cursor"]["schema"]
    assert cursor["maxLength"] == common._MAX_CURSOR
    assert f"limited to {common._MAX_QUERY_VALUE} characters; {common._MAX_CURSOR} for `cursor`" in (
        " ".join(spec()["info"]["description"].split()))
