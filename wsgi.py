"""Entry point for gunicorn: ``gunicorn wsgi:app``."""

from rapportnotes import create_app

app = create_app()
