"""WSGI entry point: `gunicorn wsgi:app`."""

from xephang import create_app

app = create_app()
