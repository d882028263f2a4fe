"""gunicorn settings for pointsvc: `gunicorn --config gunicorn.conf.py wsgi:app`.

Every value can be changed from the environment (see docs/operations.md).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


# Requests are short and mostly wait on the database: 2 x cores + 1, capped so a big host
# does not open more database connections than PostgreSQL is configured for.
workers = _int("POINTSVC_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 12))
threads = _int("POINTSVC_THREADS", 1)
timeout = _int("POINTSVC_WORKER_TIMEOUT", 30)
graceful_timeout = _int("POINTSVC_GRACEFUL_TIMEOUT", 30)
keepalive = _int("POINTSVC_KEEPALIVE", 5)
max_requests = _int("POINTSVC_MAX_REQUESTS", 0)
max_requests_jitter = max_requests // 10
bind = os.environ.get("POINTSVC_BIND", "127.0.0.1:8000")

# Each worker imports the app (and opens its own database pool) after the fork: a preloaded
# app would hand the master's pooled connections to every child (see PITFALLS).
preload_app = False

# The app writes one JSON line per request (with the request id); gunicorn's own access
# log would only duplicate it.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("POINTSVC_GUNICORN_LOGLEVEL", "info")

# Prometheus multiprocess mode: each worker writes its samples to files in this directory and
# /metrics sums them. It must be set before any worker imports prometheus_client, hence here
# in the master's environment, which the workers inherit.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _own_metrics_dir:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="pointsvc-metrics-")
METRICS_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]

# Leaderboard tallies are drained by one process beside the workers (`flask leaderboards
# drain --follow`), not by a thread in every worker: the drain's Python then never competes
# with a request for its worker's interpreter lock. Workers inherit "process" and only stand
# by (they drain every 10 intervals, should this process be gone). POINTSVC_LEADERBOARD_DRAINER
# =thread keeps the old way.
os.environ.setdefault("POINTSVC_LEADERBOARD_DRAINER", "process")
_drainer: subprocess.Popen | None = None


def on_starting(server) -> None:  # type: ignore[no-untyped-def]
    """Start from an empty metrics directory: files of a previous run would be summed too."""
    os.makedirs(METRICS_DIR, exist_ok=True)
    for name in os.listdir(METRICS_DIR):
        path = os.path.join(METRICS_DIR, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def when_ready(server) -> None:  # type: ignore[no-untyped-def]
    """Start the leaderboard drainer process (before the workers are forked)."""
    global _drainer
    drain_seconds = os.environ.get("POINTSVC_LEADERBOARD_DRAIN_SECONDS", "").strip()
    if os.environ["POINTSVC_LEADERBOARD_DRAINER"] != "process" or drain_seconds == "0":
        return
    _drainer = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", server.app.app_uri, "leaderboards", "drain",
         "--follow", "--parent", str(os.getpid())])
    server.log.info("leaderboard drainer started (pid %s)", _drainer.pid)


def child_exit(server, worker) -> None:  # type: ignore[no-untyped-def]
    """A dead worker's live gauges must stop counting (its counters stay in the sum)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # type: ignore[no-untyped-def]
    if _drainer is not None and _drainer.poll() is None:
        _drainer.terminate()  # an interrupted drain rolls back: its postings stay queued
        try:
            _drainer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _drainer.kill()
    if _own_metrics_dir:
        shutil.rmtree(METRICS_DIR, ignore_errors=True)
