"""Build hook: a wheel carries the contract and the migrations, which SPEC §1 keeps at the top level.

``GET /api/v1/openapi.yaml`` serves ``openapi.yaml`` and ``rapportnotes db upgrade`` runs
``migrations/``. A clone (and the editable install of ``make install``) finds both next to the
package; a wheel (``pip install .``, README "Running on PostgreSQL and deploying") holds only the
package, so ``build_py`` copies both into it as ``rapportnotes/_bundled/`` (``rapportnotes.project_path``).
The rest of the configuration is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the clone
        bundled = Path(self.build_lib, "rapportnotes", "_bundled")
        shutil.rmtree(bundled, ignore_errors=True)
        bundled.mkdir(parents=True)
        shutil.copy2(ROOT / "openapi.yaml", bundled / "openapi.yaml")
        shutil.copytree(ROOT / "migrations", bundled / "migrations",
                        ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]"))


setup(cmdclass={"build_py": BuildPy})
