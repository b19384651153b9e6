"""Reports as CSV for spreadsheets. Any cell that a spreadsheet could run as a formula is
neutralised with a leading apostrophe (OWASP CSV injection guidance)."""

from __future__ import annotations

import csv
import io
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

TOTAL_FIELDS = (
    "contacts",
    "minutes",
    "distinct_peers",
    "behaviour_tags",
    "supportive_tags",
    "counterproductive_tags",
    "rated_contacts",
    "mean_peer_rating",
)
COACH_COLUMNS = ("start", "contacts", "minutes")
TEAM_COLUMNS = ("coach_id", "display_name", *TOTAL_FIELDS)
# The behaviour columns that follow are named by code: a code named like one of these would give
# a CSV two columns of one name, and a reader going by the header takes the wrong one.
RESERVED_CODES = frozenset(COACH_COLUMNS + TEAM_COLUMNS)


def safe_cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def _render(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return buf.getvalue()


def coach_csv(report: dict[str, Any]) -> str:
    """One row per bucket: start, contacts, minutes, then one column per behaviour code."""
    codes = [b["code"] for b in report["behaviours"]]
    rows = [
        [s["start"], s["contacts"], s["minutes"], *(s["behaviours"].get(c, 0) for c in codes)]
        for s in report["series"]
    ]
    return _render([*COACH_COLUMNS, *codes], rows)


def team_csv(report: dict[str, Any], codes: list[str]) -> str:
    """One row per coach, then a ``team total`` row (empty coach_id); a column per code in
    ``codes`` (the report's, even when the team has no coach to take them from)."""
    rows = []
    for row in report["coaches"]:
        t = row["totals"]
        rows.append(
            [
                row["coach"]["id"],
                row["coach"]["display_name"],
                *(t[f] for f in TOTAL_FIELDS),
                *(row["behaviours"].get(c, 0) for c in codes),
            ]
        )
    t = report["totals"]
    team_counts = [sum(r["behaviours"].get(c, 0) for r in report["coaches"]) for c in codes]
    rows.append(["", "team total", *(t[f] for f in TOTAL_FIELDS), *team_counts])
    return _render([*TEAM_COLUMNS, *codes], rows)
