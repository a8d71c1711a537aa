"""The long-running processes of a Berth deployment, defined once.

The launcher (``python -m console.launcher``) starts these, and
``docker-compose.yml`` runs the same commands (a test checks they agree).
"""

from __future__ import annotations


def web(host: str = "0.0.0.0", port: int = 8000) -> list[str]:
    return ["daphne", "-b", host, "-p", str(port), "console.asgi:application"]


def worker(concurrency: int = 2) -> list[str]:
    return ["celery", "-A", "console", "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)]


def beat() -> list[str]:
    return ["celery", "-A", "console", "beat", "--loglevel", "INFO"]


def follower() -> list[str]:
    """Follows engine events: keeps the mirror in step and feeds live pages."""
    return ["python", "manage.py", "follow_engine"]


# Run once before the processes above: schema, static files, first administrator.
PREPARE = (
    ["python", "manage.py", "migrate", "--noinput"],
    ["python", "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
    ["python", "manage.py", "bootstrap"],
)
