"""WSGI entry point: `gunicorn wsgi:app`."""

from pointsvc import create_app

app = create_app()
