"""The operator commands: create-org, create-user, seed-demo (purge: tests/test_purge.py)."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select

from rapportnotes.models import AuditEvent, Behaviour, Contact, Organisation, Team, TeamMember, User

PASSWORD = "cli-created-password-1"


def counts(world):
    return {m.__name__: world.count(m) for m in (Organisation, User, Behaviour, Team, TeamMember,
                                                  Contact)}


def login(client, email, password):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def create_org(runner, *args):
    result = runner.invoke(args=["create-org", *args])
    assert result.exit_code == 0, result.output
    return result.output.strip()


# --- create-org ---------------------------------------------------------------------------------

def test_create_org_prints_its_id_and_creates_the_default_taxonomy(runner, world):
    org_id = create_org(runner, "  Harbour Recovery  ")
    assert str(uuid.UUID(org_id)) == org_id
    org = world.run(lambda s: (lambda o: (o.name, o.timezone))(s.get(Organisation, uuid.UUID(org_id))))
    assert org == ("Harbour Recovery", "UTC")
    assert world.count(Behaviour, organisation_id=uuid.UUID(org_id)) == 16
    assert world.count(Behaviour, organisation_id=uuid.UUID(org_id), active=True) == 16
    events = world.run(lambda s: [(e.action, e.actor_type, e.actor_id, e.target_id)
                                  for e in s.scalars(select(AuditEvent))])
    assert events == [("organisation.create", "system", "cli:create-org", org_id)]


def test_create_org_with_a_time_zone(runner, world):
    org_id = create_org(runner, "Dublin", "--timezone", "Europe/Dublin")
    assert world.run(lambda s: s.get(Organisation, uuid.UUID(org_id)).timezone) == "Europe/Dublin"


@pytest.mark.parametrize("args", [
    ["Acme", "--timezone", "Mars/Olympus_Mons"], ["Acme", "--timezone", ""],
    ["Acme", "--timezone", "../../etc/passwd"], ["Acme", "--timezone", "localtime"],
    ["Acme", "--timezone", "Factory"], ["   "], ["x" * 201], ["bad\x00name"], [],
])
def test_create_org_rejects_bad_input_and_stores_nothing(runner, world, args):
    result = runner.invoke(args=["create-org", *args])
    assert result.exit_code == 2, result.output  # a usage error, not a crash
    assert counts(world) == dict.fromkeys(counts(world), 0)
    assert world.count(AuditEvent) == 0


# --- create-user --------------------------------------------------------------------------------

def create_user(runner, org, email="New.Admin@Example.org", role="admin", password=PASSWORD, *extra):
    return runner.invoke(args=["create-user", "--org", org, "--email", email, "--role", role,
                               "--password-stdin", *extra], input=f"{password}\n")


def test_create_user_reads_the_password_from_stdin_and_can_log_in(runner, world, client):
    org = world.org()
    result = create_user(runner, org, "New.Admin@Example.org", "admin", PASSWORD, "--display-name", "Ada")
    assert result.exit_code == 0, result.output
    uid = result.output.strip()
    assert PASSWORD not in result.output
    row = world.run(lambda s: (lambda u: (u.email, u.role, u.display_name, u.is_active, u.password_hash))(
        s.get(User, (uuid.UUID(org), uuid.UUID(uid)))))
    assert row[:4] == ("new.admin@example.org", "admin", "Ada", True)
    assert row[4].startswith("$argon2id$")
    r = login(client, "new.admin@example.org", PASSWORD)
    assert r.status_code == 200
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {r.get_json()['access_token']}"})
    assert me.get_json()["organisation"]["id"] == org and me.get_json()["role"] == "admin"
    assert ("user.create", 201) in world.audit_actions(org)


def test_create_user_losing_a_race_for_the_email_says_so(runner, world, monkeypatch):
    """Another run (or the API) took the email between the check and the insert: the same
    one-line 'in use' error as when the check sees it, not a database error."""
    from rapportnotes.services import organisations

    org = world.org()
    assert create_user(runner, org).exit_code == 0
    real, calls = organisations.email_taken, []

    def not_yet(session, email):  # the check ran before the other insert committed
        calls.append(email)
        return False if len(calls) == 1 else real(session, email)

    monkeypatch.setattr(organisations, "email_taken", not_yet)
    result = create_user(runner, org, "new.admin@example.org")
    assert result.exit_code == 2 and "already in use" in result.output, result.output
    assert "database error" not in result.output and len(calls) == 2
    assert world.count(User) == 1


def test_create_user_display_name_defaults_to_the_local_part(runner, world):
    org = world.org()
    result = create_user(runner, org, "sam@example.org", "coach")
    assert result.exit_code == 0, result.output
    assert world.run(lambda s: s.scalar(select(User.display_name))) == "sam"


def test_password_with_windows_line_ending_is_not_mangled(runner, world, client):
    org = world.org()
    result = runner.invoke(args=["create-user", "--org", org, "--email", "w@example.org", "--role",
                                 "coach", "--password-stdin"], input=f"{PASSWORD}\r\n")
    assert result.exit_code == 0, result.output
    assert login(client, "w@example.org", PASSWORD).status_code == 200


@pytest.mark.parametrize("case", ["short", "long", "empty", "dup", "dup_other_case", "no_org", "bad_org",
                                  "bad_role", "bad_email", "no_stdin_flag", "control_in_name"])
def test_create_user_rejects_bad_input_and_stores_nothing(runner, world, case):
    org = world.org()
    world.user(org, "coach", email="taken@example.org", login=False)
    before = counts(world)
    args = {"org": org, "email": "fresh@example.org", "role": "coach", "password": PASSWORD, "extra": []}
    args.update({
        "short": {"password": "x" * 11}, "long": {"password": "x" * 257}, "empty": {"password": ""},
        "dup": {"email": "taken@example.org"}, "dup_other_case": {"email": "TAKEN@example.ORG"},
        "no_org": {"org": str(uuid.uuid4())}, "bad_org": {"org": "acme"}, "bad_role": {"role": "root"},
        "bad_email": {"email": "not-an-email"}, "control_in_name": {"extra": ["--display-name", "a\x07b"]},
        "no_stdin_flag": {},
    }[case])
    cmd = ["create-user", "--org", args["org"], "--email", args["email"], "--role", args["role"],
           *args["extra"]]
    if case != "no_stdin_flag":
        cmd.append("--password-stdin")
    result = runner.invoke(args=cmd, input=args["password"] + "\n")
    assert result.exit_code == 2, (result.output, result.exception)  # a usage error, not a crash
    assert PASSWORD not in result.output
    assert counts(world) == before
    assert ("user.create", 201) not in world.audit_actions(org)


# --- seed-demo ----------------------------------------------------------------------------------

def _seed(runner, *args):
    result = runner.invoke(args=["seed-demo", *args])
    assert result.exit_code == 0, result.output
    return result.output


def _demo_logins(output):
    password = re.search(r"password for all: (\S+)\)", output).group(1)
    logins = re.findall(r"^\s+(admin|supervisor|coach)\s+(\S+@\S+)$", output, re.M)
    return password, logins


def test_seed_demo_is_idempotent_and_its_logins_work(runner, world, client):
    first = _seed(runner)
    after_first = counts(world)
    assert after_first["Organisation"] == 1 and after_first["User"] == 5
    assert after_first["Team"] == 1 and after_first["Behaviour"] == 16
    assert 200 <= after_first["Contact"] <= 1000
    second = _seed(runner)
    assert counts(world) == after_first
    assert first == second
    events = world.run(lambda s: [(e.action, e.actor_id, e.target_id) for e in s.scalars(select(AuditEvent))])
    assert [a for a, *_ in events if a != "contact.create"] == ["organisation.create"]
    contact_ids = world.run(lambda s: {str(i) for i in s.scalars(select(Contact.id))})
    created = [(actor, target) for a, actor, target in events if a == "contact.create"]
    assert {t for _, t in created} == contact_ids and len(created) == len(contact_ids)  # each once
    assert {actor for actor, _ in created} == {"cli:seed-demo"}
    password, logins = _demo_logins(first)
    assert sorted(role for role, _ in logins) == ["admin", "coach", "coach", "coach", "supervisor"]
    tokens = {}
    for role, email in logins:
        r = login(client, email, password)
        assert r.status_code == 200, email
        tokens[role] = {"Authorization": f"Bearer {r.get_json()['access_token']}"}
    teams = client.get("/api/v1/teams", headers=tokens["supervisor"]).get_json()["items"]
    assert len(teams) == 1
    assert [m["role"] for m in teams[0]["members"]].count("coach") == 3
    contacts = client.get("/api/v1/contacts?limit=200", headers=tokens["supervisor"])
    assert contacts.status_code == 200 and len(contacts.get_json()["items"]) == 200


def test_seed_demo_if_empty_leaves_a_database_with_users_alone(runner, world):
    org = world.org()
    world.user(org, "admin", login=False)
    before = counts(world)
    output = _seed(runner, "--if-empty")
    assert "not loaded" in output
    assert counts(world) == before


def test_seed_demo_if_empty_loads_into_an_empty_database(runner, world):
    output = _seed(runner, "--if-empty")
    assert "Demo organisation" in output
    assert counts(world)["User"] == 5
    # and running it again (as ``make run`` does on every start) changes nothing
    before = counts(world)
    assert _seed(runner, "--if-empty") == output
    assert counts(world) == before


def test_seed_demo_is_not_fooled_by_one_account_with_a_demo_email(runner, world):
    """Only a complete demo counts as the demo: one account elsewhere with a demo email is not it
    (its logins would be printed with a password that is not theirs)."""
    org = world.org()
    world.user(org, "coach", email="coach2@demo.rapportnotes.test", login=False)
    before = counts(world)
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 1, result.output
    assert "coach2@demo.rapportnotes.test" in result.output and "not loaded" in result.output
    assert "Traceback" not in result.output and "Demo organisation" not in result.output
    assert counts(world) == before
    assert "not loaded" in _seed(runner, "--if-empty")  # as make run calls it: nothing to do
    assert counts(world) == before


# --- the console script when it cannot run ----------------------------------------------------

def _console(tmp_path, args, **env):
    """``rapportnotes ARGS`` as an operator runs it: the console script's group, built from the
    environment (no test configuration)."""
    from click.testing import CliRunner

    from rapportnotes.cli import main

    base = {"RAPPORTNOTES_ENV": "development", "RAPPORTNOTES_INSTANCE": str(tmp_path / "instance"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'rn.db'}", "JWT_SECRET_KEY": None}
    return CliRunner().invoke(main, args, env={**base, **env}, catch_exceptions=False)


@pytest.mark.parametrize("env", [
    {"RAPPORTNOTES_ENV": "production"},  # no signing key
    {"RAPPORTNOTES_ENV": "production", "JWT_SECRET_KEY": "too-short"},
    {"DATABASE_URL": "foo://bar"},
    {"DB_STATEMENT_TIMEOUT_MS": "abc"},
])
def test_a_configuration_the_app_cannot_start_with_is_one_clear_line(tmp_path, env):
    result = _console(tmp_path, ["create-org", "Acme"], **env)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert re.search(r"Error: (JWT_SECRET_KEY|DATABASE_URL|DB_STATEMENT_TIMEOUT_MS) ", result.output), \
        result.output
    listing = _console(tmp_path, ["--help"], **env)  # the commands are still listed
    assert "Traceback" not in listing.output
    assert all(name in listing.output for name in ("create-org", "create-user", "seed-demo", "purge"))


@pytest.mark.parametrize("args", [["create-org", "Acme"], ["purge", "--older-than", "3"], ["seed-demo"]])
@pytest.mark.parametrize("url", ["sqlite:///{tmp}/never-migrated.db",
                                 "postgresql+psycopg://root:s3cret-pw@127.0.0.1:1/x"])
def test_a_database_that_is_down_or_not_migrated_is_one_clear_line(tmp_path, args, url):
    result = _console(tmp_path, args, DATABASE_URL=url.format(tmp=tmp_path))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith("Error: database error: ") and "rapportnotes db upgrade" in result.output
    assert "s3cret-pw" not in result.output and "SELECT" not in result.output
