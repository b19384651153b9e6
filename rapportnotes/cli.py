"""The ``rapportnotes`` command: Flask's own commands plus the operator tasks of SPEC §3."""

from __future__ import annotations

import functools
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO

import click
from flask import Flask
from flask.cli import FlaskGroup, NoAppException, with_appcontext
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from rapportnotes.extensions import db

if TYPE_CHECKING:
    from rapportnotes.services.audit import Actor


def _audit(organisation_id: uuid.UUID, command: str, action: str, target_type: str,
           target_id: object, status: int = 201) -> None:
    """Operator commands are audited like admin changes, with the system as the actor."""
    from rapportnotes.services.audit import record_event

    record_event(db.session, _system(command, organisation_id), action,
                 target_type=target_type, target_id=target_id, status=status)


def _system(command: str, organisation_id: uuid.UUID) -> Actor:
    """The actor of an operator command: the system, named by the command."""
    from rapportnotes.services.audit import Actor

    return Actor(organisation_id, "system", f"cli:{command}")


def _lift_statement_timeout(connection: Connection) -> None:
    connection.exec_driver_sql("SET LOCAL statement_timeout = 0")


def operator_task(command: Callable[..., None]) -> Callable[..., None]:
    """Runs an operator command without the requests' PostgreSQL ``statement_timeout``.

    That limit (``DB_STATEMENT_TIMEOUT_MS``, 5 s) keeps a request from hanging; a purge over
    years of tombstones or redating a large organisation may take longer, and cancelling it
    midway only means running it again into the same limit. The operator watching the command
    can stop it. SQLite's busy timeout, the same setting there, is kept.
    """
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        engine = db.engine
        if engine.dialect.name != "postgresql":
            return command(*args, **kwargs)
        event.listen(engine, "begin", _lift_statement_timeout)
        try:
            return command(*args, **kwargs)
        finally:
            event.remove(engine, "begin", _lift_statement_timeout)
    return run


def register(app: Flask) -> None:
    for command in COMMANDS:
        app.cli.add_command(command)


def _create_app(*_args: object) -> Flask:
    """The app for a command; a configuration it cannot start with is a one-line error."""
    from sqlalchemy.exc import ArgumentError

    from rapportnotes import create_app
    from rapportnotes.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        raise NoAppException(str(exc)) from None
    except ArgumentError as exc:  # includes NoSuchModuleError: an unknown scheme or driver
        raise NoAppException(f"DATABASE_URL is not a usable database URL ({type(exc).__name__}).") from None


class _Group(FlaskGroup):
    """Flask's command group, with database failures told in one line, not a traceback.

    The line is the driver's own first line (e.g. "connection refused", "no such table"), which
    names no password; SQLAlchemy's full message would also print the statement.
    """

    def invoke(self, ctx: click.Context) -> object:
        from sqlalchemy.exc import DBAPIError

        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            first = (str(exc.orig).strip().splitlines() or [type(exc.orig).__name__])[0][:300]
            raise click.ClickException(
                f"database error: {first}\nIs DATABASE_URL right, the database reachable and migrated "
                "(rapportnotes db upgrade)?"
            ) from None


# No ``.env``/``.flaskenv`` (Flask reads the nearest one, up to the root, when python-dotenv is
# installed): the configuration is the environment only, as the server under gunicorn sees it.
@click.group(cls=_Group, create_app=_create_app, load_dotenv=False)
def main() -> None:
    """Manage rapportnotes."""


@click.command("create-org")
@with_appcontext
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True, help="IANA time zone name.")
def create_org(name: str, timezone: str) -> None:
    """Create an organisation (with the default taxonomy) and print its id."""
    from rapportnotes.schemas.fields import text_problem
    from rapportnotes.services.organisations import create_organisation

    name = name.strip()
    if not name or len(name) > 200 or text_problem(name):
        raise click.BadParameter("must be 1-200 printable characters", param_hint="NAME")
    try:
        org = create_organisation(db.session, name, timezone)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--timezone")
    _audit(org.id, "create-org", "organisation.create", "organisation", org.id)
    db.session.commit()
    click.echo(str(org.id))


@click.command("set-timezone")
@with_appcontext
@operator_task
@click.argument("org_id")
@click.argument("timezone")
def set_timezone_cmd(org_id: str, timezone: str) -> None:
    """Move an organisation to another IANA time zone; recomputes its contacts' local dates."""
    from rapportnotes.services.organisations import change_timezone

    try:
        oid = uuid.UUID(org_id)
    except ValueError:
        raise click.BadParameter("not an organisation id", param_hint="ORG_ID")
    try:
        changed = change_timezone(db.session, oid, timezone, _system("set-timezone", oid))
    except ValueError as exc:
        db.session.rollback()
        raise click.BadParameter(str(exc))
    click.echo(f"timezone={timezone} contacts_redated={changed}")


@click.command("create-user")
@with_appcontext
@click.option("--org", "org_id", required=True, help="Organisation id.")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "supervisor", "coach"]))
@click.option("--display-name", default=None)
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from standard input (never from the command line).")
def create_user_cmd(org_id: str, email: str, role: str, display_name: str | None,
                    password_stdin: bool) -> None:
    """Create a user in an organisation and print the user's id."""
    from marshmallow import ValidationError

    from rapportnotes.errors import ApiError
    from rapportnotes.models import Organisation
    from rapportnotes.schemas.user import UserIn
    from rapportnotes.services.organisations import create_user, email_conflict, email_taken

    # Read before the database is touched: an open transaction would hold every client's sync
    # back (services.contacts.sync_horizon) for as long as the password takes to arrive.
    password = _password_from_stdin()
    try:
        org = db.session.get(Organisation, uuid.UUID(org_id))
    except ValueError:
        org = None
    if org is None:
        raise click.BadParameter("no such organisation", param_hint="--org")
    data = {"email": email, "display_name": display_name or email.split("@")[0],
            "role": role, "password": password}
    try:
        data = UserIn().load(data)
        user = create_user(db.session, org.id, **data)
    except ValidationError as exc:
        raise click.UsageError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.messages.items()))
    except ApiError as exc:
        raise click.UsageError(exc.detail or "conflict")
    try:
        _audit(org.id, "create-user", "user.create", "user", user.id)
        db.session.commit()
    except IntegrityError:  # another run (or the API) took the email between check and insert
        db.session.rollback()
        if email_taken(db.session, data["email"]):
            raise click.UsageError(email_conflict().detail or "conflict") from None
        raise
    click.echo(str(user.id))


# Longer than the longest password (256 characters of up to 4 UTF-8 bytes) and its line ending.
_PASSWORD_LINE_BYTES = 4 * 256 + 2


def _password_from_stdin() -> str:
    """The first line of standard input, without its line ending.

    Bytes decoded as UTF-8, whatever the locale says: the API reads passwords from JSON (UTF-8),
    so the locale's codec could store a password the user can never type at login. Input that is
    not UTF-8, or no standard input at all (``<&-``), is a usage error, not a traceback; the read
    stops after the longest possible password (``< /dev/zero`` must not fill the memory). From a
    terminal it is read without echo, so the password is not left on the screen."""
    stream = getattr(sys.stdin, "buffer", None)
    if stream is None:
        raise click.UsageError("--password-stdin: there is no standard input to read the password from.")
    # Typed by an operator: not echoed.
    line = _line_without_echo(stream) if stream.isatty() else stream.readline(_PASSWORD_LINE_BYTES + 1)
    if len(line) > _PASSWORD_LINE_BYTES:
        raise click.UsageError("password: Length must be between 12 and 256.")
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise click.UsageError("--password-stdin: the password is not valid UTF-8.")


def _line_without_echo(terminal: BinaryIO) -> bytes:
    """A line typed at ``terminal`` with its echo off, as bytes, read like piped input.

    Not ``getpass``: it decodes with the locale's (or standard input's) codec, so at a terminal
    whose setting is not UTF-8 it stored a password the user can never type at login (the bytes
    UTF-8 gives), which the reading above exists to prevent, and it read without bound."""
    import termios

    fd = terminal.fileno()
    before = termios.tcgetattr(fd)
    quiet = list(before)
    # A line at a time with Return ending it and Ctrl-C stopping it, also on a terminal left
    # raw (where Return sends a carriage return and the read would never end); no echo.
    quiet[0] |= termios.ICRNL
    quiet[3] = (quiet[3] | termios.ICANON | termios.ISIG) & ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
    try:
        click.echo("Password: ", nl=False, err=True)
        return terminal.readline(_PASSWORD_LINE_BYTES + 1)
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, before)
        click.echo(err=True)  # the line end the terminal did not echo


@click.command("seed-demo")
@with_appcontext
@click.option("--if-empty", is_flag=True, help="Do nothing unless the database has no users.")
def seed_demo_cmd(if_empty: bool) -> None:
    """Load the demo organisation (idempotent) and print its logins."""
    from rapportnotes.services.demo import DEMO_PASSWORD, DemoBlocked, seed_demo

    try:
        result = seed_demo(db.session, only_if_empty=if_empty)
    except DemoBlocked as exc:
        raise click.ClickException(f"{exc}; demo not loaded.")
    if result is not None and result.created:
        _audit(result.organisation_id, "seed-demo", "organisation.create", "organisation",
               result.organisation_id)
    db.session.commit()
    if result is None:
        click.echo("Database already has data; demo not loaded.")
        return
    click.echo(f"Demo organisation: {result.organisation_id}")
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for email, role in result.logins:
        click.echo(f"  {role:<10} {email}")


@click.command("purge")
@with_appcontext
@operator_task
@click.option("--older-than", "days", required=True, type=click.IntRange(min=0, max=36_500),
              help="Hard-delete contacts soft-deleted more than DAYS days ago (0 to 36500).")
def purge_cmd(days: int) -> None:
    """Retention: remove old tombstones and expired idempotency/token records (audited)."""
    from rapportnotes.services.retention import purge

    counts = purge(db.session, days)
    db.session.commit()
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


COMMANDS = (create_org, set_timezone_cmd, create_user_cmd, seed_demo_cmd, purge_cmd)
for _command in COMMANDS:  # listed and runnable even when the app cannot be built (a clear error then)
    main.add_command(_command)
