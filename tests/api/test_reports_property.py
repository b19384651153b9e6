"""Property: the API's coach and team reports (JSON and CSV) equal a plain-Python reference of
SPEC §6 for random organisations, time zones with DST, instants around midnight and DST changes,
edits, retirements and deletions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import report_reference as ref

ZONES = ["America/New_York", "Europe/London", "UTC", "Australia/Sydney"]
CODES = ["empathy", "hope", "respect", "judging", "fixing"]
# Local dates next to DST changes (US: 9 Mar / 2 Nov 2025; UK: 30 Mar / 26 Oct; AU: 6 Apr / 5 Oct).
ANCHORS = [
    date(2025, 3, 9),
    date(2025, 3, 30),
    date(2025, 4, 6),
    date(2025, 10, 5),
    date(2025, 10, 26),
    date(2025, 11, 2),
    date(2025, 12, 31),
]

instant = st.builds(
    lambda anchor, day, minute: (
        datetime.combine(anchor + timedelta(days=day), datetime.min.time(), tzinfo=UTC)
        + timedelta(minutes=minute)
    ),
    st.sampled_from(ANCHORS),
    st.integers(-9, 9),
    st.one_of(st.integers(-300, 1740), st.sampled_from([-1, 0, 1, 239, 240, 241, 299, 300, 301, 1439])),
)
contact = st.fixed_dictionaries(
    {
        "coach": st.integers(0, 2),
        "peer": st.sampled_from(["A", "B", "C", "D"]),
        "at": instant,
        "duration": st.integers(0, 1440),
        "modality": st.sampled_from(ref.MODALITIES),
        "codes": st.lists(st.sampled_from(CODES), unique=True, max_size=4),
        "rating": st.one_of(st.none(), st.integers(0, 10)),
        "fate": st.sampled_from(["keep"] * 5 + ["delete", "move"]),
        "moved_by": st.integers(-2000, 2000),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tz=st.sampled_from(ZONES),
    contacts=st.lists(contact, max_size=12),
    anchor=st.sampled_from(ANCHORS),
    start_off=st.integers(-12, 3),
    length=st.integers(0, 60),
    bucket=st.sampled_from(["day", "week", "month"]),
    retire=st.sampled_from([None, "judging", "hope"]),
)
def test_reports_match_the_reference(client, world, tz, contacts, anchor, start_off, length, bucket, retire):
    org = world.org(timezone=tz)
    admin = world.user(org, "admin")
    coaches = [world.user(org, "coach") for _ in range(3)]
    team = world.team(org, coaches=coaches[:2])
    refs = []
    for c in contacts:
        coach = coaches[c["coach"]]
        body = {
            "peer_ref": c["peer"],
            "occurred_at": c["at"].isoformat(),
            "duration_minutes": c["duration"],
            "modality": c["modality"],
            "behaviours": c["codes"],
            "peer_rating": c["rating"],
        }
        r = client.post("/api/v1/contacts", json=body, headers=coach.headers)
        assert r.status_code == 201, r.get_json()
        rc = ref.RefContact(
            coach.id, c["peer"], c["at"], c["duration"], c["modality"], c["codes"], c["rating"]
        )
        cid = r.get_json()["id"]
        if c["fate"] == "delete":
            assert client.delete(f"/api/v1/contacts/{cid}", headers=coach.headers).status_code == 204
            rc.deleted = True
        elif c["fate"] == "move":
            rc.occurred_at = c["at"] + timedelta(minutes=c["moved_by"])
            r = client.patch(
                f"/api/v1/contacts/{cid}",
                json={"occurred_at": rc.occurred_at.isoformat()},
                headers=coach.headers,
            )
            assert r.status_code == 200
        refs.append(rc)
    listed = client.get("/api/v1/behaviours", headers=admin.headers).get_json()["items"]
    if retire:
        client.patch(f"/api/v1/behaviours/{retire}", json={"active": False}, headers=admin.headers)
    org_ref = ref.RefOrg(
        tz, [ref.RefBehaviour(b["code"], b["polarity"], b["code"] != retire) for b in listed]
    )

    first = anchor + timedelta(days=start_off)
    last = first + timedelta(days=length)
    q = f"from={first}&to={last}"
    for coach in coaches[:2]:
        got = client.get(f"/api/v1/coaches/{coach.id}/report?{q}&bucket={bucket}", headers=admin.headers)
        assert got.status_code == 200
        rep = got.get_json()
        want = ref.coach_report(org_ref, coach.id, refs, first, last, bucket)
        assert rep["totals"] == want["totals"]
        assert [(b["code"], b["count"], b["share"]) for b in rep["behaviours"]] == want["behaviours"]
        assert [(m["modality"], m["contacts"], m["minutes"]) for m in rep["modalities"]] == want["modalities"]
        assert rep["series"] == want["series"]
        text = client.get(
            f"/api/v1/coaches/{coach.id}/report?{q}&bucket={bucket}&format=csv", headers=admin.headers
        ).get_data(as_text=True)
        rows = list(csv.reader(io.StringIO(text)))
        codes = [b[0] for b in want["behaviours"]]
        assert rows[0] == ["start", "contacts", "minutes", *codes]
        assert rows[1:] == [
            [s["start"], str(s["contacts"]), str(s["minutes"]), *(str(s["behaviours"][c]) for c in codes)]
            for s in want["series"]
        ]

    team_rep = client.get(f"/api/v1/teams/{team}/report?{q}", headers=admin.headers).get_json()
    want = ref.team_report(org_ref, [c.id for c in coaches[:2]], refs, first, last)
    assert team_rep["totals"] == want["totals"]
    assert {
        r["coach"]["id"]: {"totals": r["totals"], "behaviours": r["behaviours"]} for r in team_rep["coaches"]
    } == want["coaches"]
    text = client.get(f"/api/v1/teams/{team}/report?{q}&format=csv", headers=admin.headers).get_data(
        as_text=True
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[-1][1] == "team total" and rows[-1][2] == str(want["totals"]["contacts"])
    assert ZoneInfo(tz)  # the zone name was valid for both sides
