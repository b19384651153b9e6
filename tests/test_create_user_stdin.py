"""``rapportnotes create-user --password-stdin``: what standard input can hold (SPEC §3)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from rapportnotes.models import AuditEvent, User

PASSWORD = "pässwörd-über-12"  # not ASCII: its UTF-8 bytes are what the API hashes and checks


def _create_user(runner, org, stdin, email="new@example.org"):
    return runner.invoke(args=["create-user", "--org", org, "--email", email, "--role", "coach",
                               "--password-stdin"], input=stdin)


@pytest.mark.parametrize("stdin", [b"\xff\xfe-not-utf-8-password\n", b"caf\xe9-latin-1-password\n"])
def test_a_password_that_is_not_utf8_is_a_usage_error_not_a_traceback(runner, world, stdin):
    org = world.org()
    result = _create_user(runner, org, stdin)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "UTF-8" in result.output and "Traceback" not in result.output
    assert world.count(User) == 0 and world.count(AuditEvent) == 0


def test_the_password_is_read_as_utf8_whatever_the_locale(app, world, client):
    """An operator's terminal in a non-UTF-8 locale (here latin-1) must not change the password
    that is stored: the API reads passwords from JSON, always UTF-8."""
    from flask.testing import FlaskCliRunner

    org = world.org()
    result = _create_user(FlaskCliRunner(app, charset="latin-1"), org, PASSWORD.encode() + b"\n")
    assert result.exit_code == 0, result.output
    r = client.post("/api/v1/auth/login", json={"email": "new@example.org", "password": PASSWORD})
    assert r.status_code == 200


def test_a_line_longer_than_any_password_is_refused(runner, world):
    """Refused once the longest possible password has been read, not after reading all of it:
    ``< /dev/zero`` has no end (the length check alone would refuse a long finite line too)."""
    org = world.org()
    stdin = io.BytesIO(b"x" * 10_000_000)  # e.g. ``< /dev/zero`` or the wrong file
    result = _create_user(runner, org, stdin)
    assert result.exit_code == 2, (result.output, result.exception)
    assert "password" in result.output and "Traceback" not in result.output
    assert stdin.tell() <= 4 * 256 + 3
    assert world.count(User) == 0


def test_no_standard_input_at_all_is_a_usage_error_not_a_traceback(database_url, world, tmp_path: Path):
    """``rapportnotes create-user ... --password-stdin <&-`` (stdin closed, as some job runners
    start commands): Python then has no ``sys.stdin``."""
    org = world.org()
    code = "from rapportnotes.cli import main; main(prog_name='rapportnotes')"
    script = (f'"{sys.executable}" -c "{code}" create-user --org {org} --email n@example.org '
              "--role coach --password-stdin <&-")
    env = {"PATH": "/usr/bin:/bin", "RAPPORTNOTES_ENV": "development", "DATABASE_URL": database_url,
           "RAPPORTNOTES_INSTANCE": str(tmp_path), "PYTHONPATH": str(Path(__file__).parent.parent)}
    done = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "standard input" in done.stderr
    assert world.count(User) == 0


class _WatchedStdin(io.BytesIO):
    """Standard input that notes whether the command had a database transaction open while it
    waited to be read (an operator typing, or a script that has not written yet)."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.open_transaction_while_read: list[bool] = []

    def _note(self) -> None:
        from flask import has_app_context

        from rapportnotes.extensions import db

        if has_app_context():  # click probes the stream before the command runs
            self.open_transaction_while_read.append(db.session().in_transaction())

    def read(self, *args):
        self._note()
        return super().read(*args)

    def read1(self, *args):
        self._note()
        return super().read1(*args)

    def readline(self, *args):
        self._note()
        return super().readline(*args)


def test_no_transaction_is_open_while_the_password_is_awaited(runner, world, client):
    """On PostgreSQL an open transaction holds every client's sync back until it ends (README:
    an idle ``psql`` does), and nothing bounds how long an operator takes to type."""
    org = world.org()
    stdin = _WatchedStdin(PASSWORD.encode() + b"\n")
    result = _create_user(runner, org, stdin)
    assert result.exit_code == 0, result.output
    assert stdin.open_transaction_while_read and not any(stdin.open_transaction_while_read)
    assert client.post("/api/v1/auth/login", json={"email": "new@example.org", "password": PASSWORD}
                       ).status_code == 200


def _typed_at_a_terminal(database_url, org: str, tmp_path: Path, raw: bool = False, enter: bytes = b"\n",
                         **env_extra: str) -> tuple[int, bytes]:
    """Runs create-user with a pseudo-terminal as its terminal, types ``PASSWORD`` (as UTF-8) at
    its prompt and ``enter``, the terminal in raw mode if ``raw``; returns the exit code and
    everything the terminal showed."""
    import os
    import pty
    import select

    main, tty = pty.openpty()
    if raw:
        import tty as terminal_modes

        terminal_modes.setraw(tty)
    env = {"PATH": "/usr/bin:/bin", "RAPPORTNOTES_ENV": "development", "DATABASE_URL": database_url,
           "RAPPORTNOTES_INSTANCE": str(tmp_path), "PYTHONPATH": str(Path(__file__).parent.parent),
           "LANG": "C.UTF-8", **env_extra}
    code = "from rapportnotes.cli import main; main(prog_name='rapportnotes')"
    # A session of its own: no controlling terminal; standard input is the pty.
    proc = subprocess.Popen([sys.executable, "-c", code, "create-user", "--org", org, "--email",
                             "typed@example.org", "--role", "coach", "--password-stdin"],
                            stdin=tty, stdout=tty, stderr=tty, env=env, start_new_session=True)
    os.close(tty)
    screen = b""

    def read_until(done, seconds: float = 30) -> None:
        nonlocal screen
        while not done(screen) and select.select([main], [], [], seconds)[0]:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the command exited and closed the terminal
                return
            if not chunk:
                return
            screen += chunk

    try:
        read_until(lambda s: b"Password:" in s)
        os.write(main, PASSWORD.encode() + enter)
        read_until(lambda s: False)
        return proc.wait(30), screen
    finally:
        proc.kill()
        os.close(main)


@pytest.mark.parametrize("settings", [{}, {"PYTHONIOENCODING": "latin-1"}], ids=["utf8", "latin1"])
def test_a_password_typed_at_a_terminal_is_not_echoed_and_read_as_utf8(
        database_url, world, client, tmp_path: Path, settings):
    """An operator typing the password at a terminal: it must not stay on the screen (or in the
    terminal's scrollback and session recordings). And, as from a pipe, it is UTF-8 whatever
    the terminal's configured codec: getpass decoded it with that codec (here standard input's,
    latin-1), storing a password the user could never type at login (exit 0, nothing said)."""
    org = world.org()
    code, screen = _typed_at_a_terminal(database_url, org, tmp_path, **settings)
    assert code == 0, screen
    assert PASSWORD.encode() not in screen
    assert client.post("/api/v1/auth/login", json={"email": "typed@example.org", "password": PASSWORD}
                       ).status_code == 200


def test_a_password_typed_at_a_terminal_left_in_raw_mode_ends_at_return(
        database_url, world, client, tmp_path: Path):
    """A terminal a crashed full-screen program left raw (``stty raw``: no line discipline) sends
    a carriage return for Return, never a line feed: echo off alone kept it raw, so the read
    never ended (and Ctrl-C, a plain byte there, could not stop it)."""
    org = world.org()
    code, screen = _typed_at_a_terminal(database_url, org, tmp_path, raw=True, enter=b"\r")
    assert code == 0, screen
    assert PASSWORD.encode() not in screen
    assert client.post("/api/v1/auth/login", json={"email": "typed@example.org", "password": PASSWORD}
                       ).status_code == 200
