"""The command line is configured by the environment only (SPEC §1), like the server: a ``.env``
file in the working directory or any directory above it is not read. Flask's command group reads
one by default when python-dotenv is installed (a dev install has it), so ``make run`` under a
directory holding someone's ``.env`` migrated and seeded that file's database while gunicorn
(which never reads it) served another."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner


def test_a_dotenv_file_above_the_working_directory_is_not_read(tmp_path: Path, monkeypatch):
    from rapportnotes.cli import main

    (tmp_path / ".env").write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'from-dotenv.db'}\n")
    (tmp_path / "clone").mkdir()
    monkeypatch.chdir(tmp_path / "clone")
    for var in ("DATABASE_URL", "FLASK_SKIP_DOTENV"):  # restored afterwards whatever gets loaded
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    env = {"RAPPORTNOTES_ENV": "development", "RAPPORTNOTES_INSTANCE": str(tmp_path / "instance"),
           "JWT_SECRET_KEY": None}
    result = CliRunner().invoke(main, ["db", "upgrade"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "instance" / "rapportnotes.db").exists()
    assert not (tmp_path / "from-dotenv.db").exists()
