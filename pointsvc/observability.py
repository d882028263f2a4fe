"""Request ids, one JSON log line per request, Prometheus metrics."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

REQUESTS = Counter(
    "pointsvc_http_requests_total", "HTTP requests", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "pointsvc_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

access_log = logging.getLogger("pointsvc.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if isinstance(record.msg, dict):
            payload.update(record.msg)
        else:
            payload["message"] = record.getMessage()
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging() -> None:
    """JSON lines on stderr for every pointsvc logger (idempotent)."""
    root = logging.getLogger("pointsvc")
    if any(getattr(h, "_pointsvc", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._pointsvc = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def current_request_id() -> str:
    """This request's id: the caller's X-Request-ID if well-formed, else a new one."""
    if "request_id" not in g:
        incoming = request.headers.get("X-Request-ID", "")
        # fullmatch, not match: "$" would let a trailing newline through into the logs.
        g.request_id = incoming if REQUEST_ID_PATTERN.fullmatch(incoming) else uuid.uuid4().hex
    return g.request_id


def _before() -> None:
    current_request_id()
    g.started = time.perf_counter()


def _after(response: Response) -> Response:
    response.headers["X-Request-ID"] = current_request_id()
    started = g.get("started")
    if started is None:
        return response
    duration = time.perf_counter() - started
    # The URL rule, not the path: ids in paths would make one time series per object.
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    LATENCY.labels(request.method, endpoint).observe(duration)
    from flask import current_app

    if current_app.config.get("LOG_REQUESTS", True):
        access_log.info(
            {
                "event": "request",
                "method": request.method,
                "path": request.path,
                "endpoint": endpoint,
                "status": response.status_code,
                "duration_ms": round(duration * 1000, 2),
                "request_id": g.get("request_id"),
            }
        )
    return response


def metrics_view() -> Response:
    """Prometheus text; under gunicorn, the multiprocess collector sums every worker."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        data = generate_latest(REGISTRY)
    return Response(data, mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    configure_logging()
    # First of all before-request hooks, so every later failure already has a request id.
    app.before_request_funcs.setdefault(None, []).insert(0, _before)
    app.after_request(_after)
    app.add_url_rule("/metrics", "metrics", metrics_view)
