"""Entry point for gunicorn: ``gunicorn wsgi:app``."""

import sys

from rapportnotes import create_app
from rapportnotes.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    # One line, not a traceback per worker: gunicorn stops with "App failed to load" (exit 4),
    # the status it gives an application that cannot be imported.
    print(f"rapportnotes: {exc}", file=sys.stderr, flush=True)
    sys.exit(4)
