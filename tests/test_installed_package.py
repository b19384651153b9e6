"""An installed package (``pip install .``, README "Running on PostgreSQL and deploying"), not a clone.

A wheel holds what ``build_py`` puts in its build directory. ``openapi.yaml`` and ``migrations/``
sit next to the package (SPEC §1), so the package found them only in a clone: an installed
``rapportnotes db upgrade`` said "Path doesn't exist: …/site-packages/migrations" and
``GET /api/v1/openapi.yaml`` was a 500.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "openapi.yaml",
           "rapportnotes", "migrations")
SKIP = shutil.ignore_patterns("__pycache__", "*.py[cod]")


def _build(tmp_path: Path) -> Path:
    """What a wheel of this tree holds: ``build_py`` over a copy of the sources (the clone stays clean)."""
    src, lib = tmp_path / "src", tmp_path / "lib"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=SKIP)
        else:
            shutil.copy2(ROOT / name, src / name)
    proc = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
                          cwd=src, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return lib


def _run(lib: Path, tmp_path: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Python with the built package first on the path, away from the clone."""
    unset = ("DATABASE_URL", "JWT_SECRET_KEY", "OPENAPI_PATH")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(PYTHONPATH=str(lib), RAPPORTNOTES_ENV="development",
               RAPPORTNOTES_INSTANCE=str(tmp_path / "inst"))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)


def test_installed_package_migrates_and_serves_its_contract(tmp_path):
    lib = _build(tmp_path)

    upgrade = _run(lib, tmp_path,
                   "import sys, rapportnotes.cli as c; print(c.__file__, file=sys.stderr); c.main()",
                   "db", "upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    assert str(lib) in upgrade.stderr.splitlines()[0]  # the built package ran, not the clone's
    assert "Running upgrade" in upgrade.stderr and "Path doesn't exist" not in upgrade.stderr

    served = _run(lib, tmp_path, (
        "import sys; from rapportnotes import create_app\n"
        "r = create_app().test_client().get('/api/v1/openapi.yaml')\n"
        "sys.stdout.buffer.write(str(r.status_code).encode() + b'\\n' + r.data)"
    ))
    assert served.returncode == 0, served.stderr
    status, _, body = served.stdout.partition("\n")
    assert status == "200"
    assert body == (ROOT / "openapi.yaml").read_text()
