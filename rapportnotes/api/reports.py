"""Coach and team reports, as JSON or CSV (SPEC §5 Reports, §6)."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, Response, request
from werkzeug.exceptions import HTTPException

from rapportnotes.api.common import actor_for, bad_query, date_arg, query_args
from rapportnotes.api.teams import get_visible_team
from rapportnotes.errors import ApiError
from rapportnotes.extensions import db
from rapportnotes.security import (
    checks_caller_itself,
    known_zone,
    may_see_coach,
    me,
    parse_id,
    require_caller,
    roles_required,
    token_caller,
)
from rapportnotes.services import report_csv, reports
from rapportnotes.services.audit import record_event
from rapportnotes.services.timezones import today

bp = Blueprint("reports", __name__)


def _period(args, tz: str) -> reports.Period:
    last = date_arg(args, "to") or today(tz)
    first = date_arg(args, "from")
    if first is None:
        if last < date.min + timedelta(days=reports.DEFAULT_SPAN_DAYS - 1):
            raise bad_query("to", "Too early for the default period; give 'from' as well.")
        first = last - timedelta(days=reports.DEFAULT_SPAN_DAYS - 1)
    if first > last:
        raise bad_query("from", "Must not be after 'to'.")
    if (last - first).days + 1 > reports.MAX_SPAN_DAYS:
        raise bad_query("to", f"The period may span at most {reports.MAX_SPAN_DAYS} days.")
    return reports.Period(first, last)


def _wants_csv(args) -> bool:
    fmt = args.get("format")
    if fmt is not None:
        if fmt not in ("json", "csv"):
            raise bad_query("format", "Must be json or csv.")
        return fmt == "csv"
    csv_q, json_q = _accept_quality("text/csv"), _accept_quality("application/json")
    return csv_q > 0 and csv_q > json_q


def _accept_quality(mimetype: str) -> float:
    """The quality the Accept header gives ``mimetype``: the most specific matching range wins
    (RFC 9110 section 12.5.1). Parameters of a range (``text/csv; charset=utf-8``,
    ``text/csv;header=present``) do not stop it matching: Werkzeug's ``MIMEAccept`` matches
    only identical parameters, so those Accept headers got JSON."""
    kind = mimetype.split("/", 1)[0]
    best, specificity = 0.0, -1
    for value, quality in request.accept_mimetypes:
        media_range = value.split(";", 1)[0].strip().lower()
        if media_range == mimetype:
            rank = 2
        elif media_range == f"{kind}/*":
            rank = 1
        elif media_range == "*/*":
            rank = 0
        else:
            continue
        if rank > specificity:
            best, specificity = quality, rank
    return best


_VARY = {"Vary": "Accept"}  # the representation is chosen by the Accept header


def _csv(text: str, filename: str) -> Response:
    resp = Response(text, mimetype="text/csv")
    resp.headers["Content-Type"] = "text/csv; charset=utf-8"
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers.update(_VARY)
    return resp


COACH_REPORT_ROLES = ("coach", "supervisor", "admin")
COACH_REPORT_ARGS = {"from", "to", "bucket", "format"}


@bp.get("/coaches/<coach_id>/report")
@checks_caller_itself
def coach(coach_id: str):
    fast = _coach_in_one_statement(coach_id)
    if fast is not None:
        return fast
    user = require_caller(*COACH_REPORT_ROLES)
    args = query_args(COACH_REPORT_ARGS)
    cid = parse_id(coach_id, "coach")
    target = reports.find_coach(db.session, user.organisation_id, cid)
    if target is None or target.role == "admin" or not may_see_coach(user, cid):
        raise ApiError(404, "No such coach.")
    period, bucket, as_csv = _coach_options(args, user.organisation.timezone)
    report = reports.coach_report(db.session, target, period, bucket)
    record_event(db.session, actor_for(user), "report.coach", target_type="user", target_id=cid)
    db.session.commit()
    return _coach_response(report, as_csv)


def _coach_options(args, tz: str) -> tuple[reports.Period, str, bool]:
    """Period, bucket and whether CSV was asked for; a 422 for anything malformed."""
    period = _period(args, tz)
    bucket = args.get("bucket", "week")
    if bucket not in reports.BUCKETS:
        raise bad_query("bucket", "Must be day, week or month.")
    return period, bucket, _wants_csv(args)


def _coach_in_one_statement(coach_id: str):
    """On PostgreSQL, a well-formed pull whose organisation's zone this process knows is one
    statement that checks the caller, who may read whom, and writes the audit row itself
    (``services.reports.checked_coach_statement``). Anything else, and any pull that statement
    refuses, returns None: the view then takes the ordinary path, which checks the caller first
    and gives every refusal and every complaint about the query as usual."""
    if db.engine.dialect.name != "postgresql":
        return None
    caller = token_caller()
    tz = known_zone(caller.organisation_id)
    if tz is None:
        return None
    try:
        cid = parse_id(coach_id, "coach")
        period, bucket, as_csv = _coach_options(query_args(COACH_REPORT_ARGS), tz)
    except (ApiError, HTTPException, ValueError, ArithmeticError):
        return None
    report = reports.checked_coach_report(db.engine, caller=caller, tz=tz, coach_id=cid, period=period,
                                          bucket=bucket, actor=actor_for(caller), roles=COACH_REPORT_ROLES)
    return None if report is None else _coach_response(report, as_csv)


def _coach_response(report: dict, as_csv: bool):
    if as_csv:
        name = f"coach-report-{report['coach']['id']}-{report['from']}-{report['to']}.csv"
        return _csv(report_csv.coach_csv(report), name)
    return report, 200, _VARY


@bp.get("/teams/<team_id>/report")
@roles_required("supervisor", "admin")
def team(team_id: str):
    user = me()
    args = query_args({"from", "to", "format"})
    t = get_visible_team(team_id)
    period = _period(args, user.organisation.timezone)
    as_csv = _wants_csv(args)
    report, codes = reports.team_report_and_codes(db.session, t, period)
    record_event(db.session, actor_for(user), "report.team", target_type="team", target_id=t.id)
    db.session.commit()
    if as_csv:
        name = f"team-report-{t.id}-{period.first}-{period.last}.csv"
        return _csv(report_csv.team_csv(report, codes), name)
    return report, 200, _VARY
