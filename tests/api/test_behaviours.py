"""The taxonomy: defaults per organisation, admin adds and retires, codes never reused."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from rapportnotes.models import Behaviour
from tests.support.problems import assert_problem

URL = "/api/v1/behaviours"
SPEC_CODES = [
    ("genuine_interest", "engagement", "supportive"),
    ("active_listening", "engagement", "supportive"),
    ("empathy", "engagement", "supportive"),
    ("respect", "engagement", "supportive"),
    ("open_questions", "mi_skill", "supportive"),
    ("reflections", "mi_skill", "supportive"),
    ("validation", "support", "supportive"),
    ("affirmation", "support", "supportive"),
    ("hope", "support", "supportive"),
    ("partnership", "partnership", "supportive"),
    ("autonomy", "partnership", "supportive"),
    ("safe_space", "environment", "supportive"),
    ("shared_experience", "lived_experience", "supportive"),
    ("judging", "barrier", "counterproductive"),
    ("fixing", "barrier", "counterproductive"),
    ("dismissing", "barrier", "counterproductive"),
]


def test_every_role_reads_the_default_taxonomy_in_spec_order(client, cast):
    for user in (cast.coach, cast.supervisor, cast.admin):
        r = client.get(URL, headers=user.headers)
        assert r.status_code == 200
        items = r.get_json()["items"]
        assert [(b["code"], b["category"], b["polarity"]) for b in items] == SPEC_CODES
        assert all(b["active"] and b["label"] and b["description"] for b in items)


def test_labels_are_our_own_words_not_the_article():
    """No run of six words from the seed article appears in our taxonomy texts (checked against a
    fingerprint of the article, so the test needs no copy of it)."""
    lines = (Path(__file__).resolve().parents[1] / "support" / "article_fingerprint.txt").read_text().split()
    article_runs = {line for line in lines if not line.startswith("#") and len(line) == 12}
    assert len(article_runs) > 500
    data = json.loads(resources.files("rapportnotes").joinpath("taxonomy.json").read_text())
    assert len(data) == 16
    for item in data:
        ours = re.findall(r"[a-z']+", f"{item['label']} {item['description']}".lower())
        for i in range(len(ours) - 5):
            run = hashlib.sha256(" ".join(ours[i : i + 6]).encode()).hexdigest()[:12]
            assert run not in article_runs, item["code"]


def test_admin_adds_a_behaviour_and_it_is_usable(client, cast, world):
    new = {
        "code": "motivational_summary",
        "label": "Summary",
        "description": "Pulled it together.",
        "category": "mi_skill",
        "polarity": "supportive",
    }
    r = client.post(URL, json=new, headers=cast.admin.headers)
    assert r.status_code == 201 and r.get_json() == {**new, "active": True}
    assert world.count(Behaviour, organisation_id=__import__("uuid").UUID(cast.org)) == 17
    # Other organisations are untouched.
    codes_b = [b["code"] for b in client.get(URL, headers=cast.admin_b.headers).get_json()["items"]]
    assert "motivational_summary" not in codes_b
    c = client.post(
        "/api/v1/contacts",
        headers=cast.coach.headers,
        json={
            "peer_ref": "P1",
            "occurred_at": "2025-01-01T10:00:00Z",
            "duration_minutes": 5,
            "modality": "phone",
            "behaviours": ["motivational_summary"],
        },
    )
    assert c.status_code == 201
    assert ("behaviour.create", 201) in world.audit_actions(cast.org)


def test_codes_are_never_reused_even_when_retired(client, cast):
    client.patch(f"{URL}/judging", json={"active": False}, headers=cast.admin.headers)
    r = client.post(
        URL,
        json={"code": "judging", "label": "x", "category": "barrier", "polarity": "supportive"},
        headers=cast.admin.headers,
    )
    assert_problem(r, 409, "code")


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"code": "Bad Code", "label": "x", "category": "c", "polarity": "supportive"}, "code"),
        ({"code": "ok_code", "label": "", "category": "c", "polarity": "supportive"}, "label"),
        ({"code": "ok_code", "label": "x", "category": "c", "polarity": "neutral"}, "polarity"),
        ({"code": "ok_code", "label": "x", "category": "Not Snake", "polarity": "supportive"}, "category"),
        (
            {"code": "ok_code", "label": "x", "category": "c", "polarity": "supportive", "active": False},
            "active",
        ),
        ({"label": "x", "category": "c", "polarity": "supportive"}, "code"),
    ],
)
def test_bad_behaviour_bodies_are_422(client, cast, world, payload, field):
    assert_problem(client.post(URL, json=payload, headers=cast.admin.headers), 422, field)
    assert world.count(Behaviour, code="ok_code") == 0


@pytest.mark.parametrize("code", ["minutes", "contacts", "start", "coach_id", "supportive_tags",
                                  "mean_peer_rating"])
def test_a_code_may_not_take_the_name_of_a_report_csv_column(client, cast, world, code):
    """A report CSV names a column per behaviour code after its own columns: a behaviour coded
    ``minutes`` gave the team CSV two ``minutes`` columns, and a reader going by the header (a
    ``csv.DictReader``) read the behaviour's count as the coach's minutes."""
    body = {"code": code, "label": "x", "category": "c", "polarity": "supportive"}
    assert_problem(client.post(URL, json=body, headers=cast.admin.headers), 422, "code")
    assert world.count(Behaviour, code=code) == 0


def test_patch_cannot_change_code_or_polarity(client, cast):
    for payload, field in (({"code": "x"}, "code"), ({"polarity": "supportive"}, "polarity")):
        assert_problem(client.patch(f"{URL}/judging", json=payload, headers=cast.admin.headers), 422, field)


def test_retire_and_reactivate(client, cast):
    r = client.patch(
        f"{URL}/hope", json={"active": False, "label": "Hope (retired)"}, headers=cast.admin.headers
    )
    assert r.status_code == 200 and r.get_json()["active"] is False
    listed = {b["code"]: b for b in client.get(URL, headers=cast.coach.headers).get_json()["items"]}
    assert listed["hope"]["active"] is False and listed["hope"]["label"] == "Hope (retired)"
    assert client.patch(f"{URL}/hope", json={"active": True}, headers=cast.admin.headers).status_code == 200


def test_authorization(client, cast):
    new = {"code": "x_code", "label": "x", "category": "c", "polarity": "supportive"}
    for user in (cast.coach, cast.supervisor):
        assert_problem(client.post(URL, json=new, headers=user.headers), 403)
        assert_problem(client.patch(f"{URL}/hope", json={"active": False}, headers=user.headers), 403)
    assert_problem(client.get(URL), 401)
    assert_problem(
        client.patch(f"{URL}/no_such_code", json={"active": False}, headers=cast.admin.headers), 404
    )
    # Org B's admin edits only org B's taxonomy.
    client.patch(f"{URL}/hope", json={"active": False}, headers=cast.admin_b.headers)
    hope_a = [
        b for b in client.get(URL, headers=cast.coach.headers).get_json()["items"] if b["code"] == "hope"
    ]
    assert hope_a[0]["active"] is True


def test_descriptions_do_not_reuse_the_spec_table_wording():
    """SPEC §7: labels and descriptions are the project's own words. No run of five words from the
    SPEC's 'what the coach did' column appears in them (checked against a fingerprint)."""
    fingerprint = Path(__file__).resolve().parents[1] / "support" / "spec_taxonomy_fingerprint.txt"
    lines = fingerprint.read_text().split()
    spec_runs = {line for line in lines if not line.startswith("#") and len(line) == 12}
    assert len(spec_runs) > 100
    data = json.loads(resources.files("rapportnotes").joinpath("taxonomy.json").read_text())
    for item in data:
        ours = re.findall(r"[a-z']+", f"{item['label']} {item['description']}".lower())
        for i in range(len(ours) - 4):
            run = hashlib.sha256(" ".join(ours[i : i + 5]).encode()).hexdigest()[:12]
            assert run not in spec_runs, (item["code"], " ".join(ours[i : i + 5]))
