"""Property: the API's coach and team reports (JSON and CSV) equal a plain-Python reference of
SPEC §6 for random organisations, time zones with DST, instants around midnight and DST changes,
edits, retirements and deletions."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import report_reference as ref

TOTALS = [
    "contacts",
    "minutes",
    "distinct_peers",
    "behaviour_tags",
    "supportive_tags",
    "counterproductive_tags",
    "rated_contacts",
    "mean_peer_rating",
]

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

# A contact's instant: a local day (often one of the days on either side of the period's edges), then
# minutes from that day's local midnight, biased to land just before/after midnight, in the hours
# where the local and the UTC date differ (New York evenings, Sydney and BST mornings) and in the
# 01:00-03:00 DST hours.
EDGES = ("before", "first", "last", "after")
day_choice = st.one_of(st.sampled_from(EDGES), st.integers(-3, 65))
minute_offset = st.one_of(
    st.sampled_from([-300, -241, -61, -60, -1, 0, 1, 59, 60, 61, 119, 120, 121, 179, 180, 599, 659, 1439]),
    st.integers(-720, 720),
    st.integers(-1500, 1500),
)


def contact_day(choice: str | int, first: date, last: date) -> date:
    edges = dict(zip(EDGES, (first - timedelta(days=1), first, last, last + timedelta(days=1)), strict=True))
    return edges[choice] if isinstance(choice, str) else first + timedelta(days=choice)


def local_instant(tz: str, day: date, minute: int) -> datetime:
    midnight = datetime.combine(day, time(0), tzinfo=ZoneInfo(tz))
    return midnight.astimezone(UTC) + timedelta(minutes=minute)


contact = st.fixed_dictionaries(
    {
        "coach": st.integers(0, 2),
        "peer": st.sampled_from(["A", "B", "C", "D"]),
        "day": day_choice,
        "minute": minute_offset,
        "duration": st.integers(0, 1440),
        "modality": st.sampled_from(ref.MODALITIES),
        "codes": st.lists(st.sampled_from(CODES), unique=True, max_size=4),
        "rating": st.one_of(st.none(), st.integers(0, 10)),
        "fate": st.sampled_from(["keep"] * 5 + ["delete", "move", "edit"]),
        "moved_by": st.integers(-2000, 2000),
        "edit": st.fixed_dictionaries(
            {},
            optional={
                "peer_ref": st.sampled_from(["A", "E"]),
                "duration_minutes": st.integers(0, 1440),
                "modality": st.sampled_from(ref.MODALITIES),
                "behaviours": st.lists(st.sampled_from(CODES), unique=True, max_size=4),
                "peer_rating": st.one_of(st.none(), st.integers(0, 10)),
            },
        ),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    tz=st.sampled_from(ZONES),
    contacts=st.lists(contact, min_size=1, max_size=12),
    anchor=st.sampled_from(ANCHORS),
    start_off=st.integers(-4, 3),
    length=st.one_of(st.sampled_from([0, 1, 2, 6, 7, 8]), st.integers(0, 62)),
    bucket=st.sampled_from(["day", "week", "month"]),
    retire=st.sampled_from([None, "judging", "hope"]),
)
def test_reports_match_the_reference(client, world, tz, contacts, anchor, start_off, length, bucket, retire):
    org = world.org(timezone=tz)
    admin = world.user(org, "admin")
    coaches = [world.user(org, "coach") for _ in range(3)]
    team = world.team(org, coaches=coaches[:2])
    first = anchor + timedelta(days=start_off)
    last = first + timedelta(days=length)
    refs = []
    for c in contacts:
        c["at"] = local_instant(tz, contact_day(c["day"], first, last), c["minute"])
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
        elif c["fate"] == "edit":
            patch = c["edit"]
            r = client.patch(f"/api/v1/contacts/{cid}", json=patch, headers=coach.headers)
            assert r.status_code == 200, r.get_json()
            rc.peer_ref = patch.get("peer_ref", rc.peer_ref)
            rc.duration = patch.get("duration_minutes", rc.duration)
            rc.modality = patch.get("modality", rc.modality)
            rc.codes = patch.get("behaviours", rc.codes)
            rc.rating = patch.get("peer_rating", rc.rating)
        refs.append(rc)
    listed = client.get("/api/v1/behaviours", headers=admin.headers).get_json()["items"]
    if retire:
        client.patch(f"/api/v1/behaviours/{retire}", json={"active": False}, headers=admin.headers)
    org_ref = ref.RefOrg(
        tz, [ref.RefBehaviour(b["code"], b["polarity"], b["code"] != retire) for b in listed]
    )

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
    codes = list(next(iter(want["coaches"].values()))["behaviours"])
    assert rows[0] == ["coach_id", "display_name", *TOTALS, *codes]

    def cells(totals, counts):
        return [("" if totals[f] is None else str(totals[f])) for f in TOTALS] + [
            str(counts[c]) for c in codes
        ]

    by_id = {r["coach"]["id"]: r["coach"]["display_name"] for r in team_rep["coaches"]}
    assert sorted(rows[1:-1]) == sorted(
        [cid, by_id[cid], *cells(w["totals"], w["behaviours"])] for cid, w in want["coaches"].items()
    )
    team_counts = {c: sum(w["behaviours"][c] for w in want["coaches"].values()) for c in codes}
    assert rows[-1] == ["", "team total", *cells(want["totals"], team_counts)]
    assert ZoneInfo(tz)  # the zone name was valid for both sides
