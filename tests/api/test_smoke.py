"""The harness itself: both backends migrate, and a real login round-trip works."""

from tests.support.problems import assert_problem


def test_login_me_logout_round_trip(client, world):
    org = world.org()
    u = world.user(org, "coach", login=False)
    r = client.post("/api/v1/auth/login", json={"email": u.email.upper(), "password": u.password})
    assert r.status_code == 200
    body = r.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    h = {"Authorization": f"Bearer {body['access_token']}"}
    me = client.get("/api/v1/me", headers=h).get_json()
    assert me["id"] == u.id and me["organisation"]["id"] == org and "password_hash" not in me
    assert client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert_problem(client.get("/api/v1/me", headers=h), 401)


def test_cast_builds(cast, client):
    r = client.get("/api/v1/teams", headers=cast.supervisor.headers)
    assert r.status_code == 200
    assert [t["id"] for t in r.get_json()["items"]] == [cast.team]
