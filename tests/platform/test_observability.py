"""Request ids, one JSON log line per request, and Prometheus metrics by URL rule."""

from __future__ import annotations

import json
import logging
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pointsvc.observability import JsonFormatter


def _samples(text: str, name: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _count(client, method: str, endpoint: str, status: str) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    key = tuple(sorted({"method": method, "endpoint": endpoint, "status": status}.items()))
    return _samples(text, "pointsvc_http_requests_total").get(key, 0.0)


def test_request_id_is_generated_when_absent(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first != second


def test_well_formed_request_id_is_echoed(client):
    r = client.get("/healthz", headers={"X-Request-ID": "lb-7f3a:req.42_x"})
    assert r.headers["X-Request-ID"] == "lb-7f3a:req.42_x"
    r = client.get("/api/v1/me", headers={"X-Request-ID": "abc-123"})
    assert r.get_json()["request_id"] == "abc-123" == r.headers["X-Request-ID"]


@pytest.mark.parametrize(
    "bad", ["a" * 65, "has space", "semi;colon", "<script>", "中文", "quote\"d", "x" * 1000]
)
def test_malformed_request_id_is_replaced(client, bad):
    r = client.get("/healthz", headers={"X-Request-ID": bad})
    assert r.headers["X-Request-ID"] != bad
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])


def test_one_json_log_line_per_request(make_app, caplog):
    app = make_app(LOG_REQUESTS=True)
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="pointsvc.access"):
        client.get("/api/v1/orgs/77", headers={"X-Request-ID": "log-me-1"})
        client.get("/healthz")
    records = [rec for rec in caplog.records if rec.name == "pointsvc.access"]
    assert len(records) == 2
    line = json.loads(JsonFormatter().format(records[0]))
    assert line["method"] == "GET"
    assert line["path"] == "/api/v1/orgs/77"
    assert line["endpoint"] == "/api/v1/orgs/<int:node_id>"
    assert line["status"] == 401
    assert line["request_id"] == "log-me-1"
    assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["time"]
    assert "\n" not in JsonFormatter().format(records[0])


def test_log_lines_can_be_switched_off(make_app, caplog):
    app = make_app(LOG_REQUESTS=False)
    with caplog.at_level(logging.INFO, logger="pointsvc.access"):
        app.test_client().get("/healthz")
    assert not [rec for rec in caplog.records if rec.name == "pointsvc.access"]


def test_json_formatter_keeps_chinese_and_exceptions():
    try:
        raise ValueError("坏了")
    except ValueError:
        import sys

        record = logging.LogRecord("pointsvc.x", logging.ERROR, __file__, 1, "失败 %s", ("甲",),
                                   sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "失败 甲"
    assert "ValueError: 坏了" in line["exception"]


def test_metrics_count_by_url_rule_not_raw_path(client):
    endpoint = "/api/v1/orgs/<int:node_id>"
    before = _count(client, "GET", endpoint, "401")
    for node_id in (1, 22, 333, 4444):
        assert client.get(f"/api/v1/orgs/{node_id}").status_code == 401
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.mimetype == "text/plain"
    text = r.get_data(as_text=True)
    assert _count(client, "GET", endpoint, "401") == before + 4
    assert "/api/v1/orgs/4444" not in text  # no raw paths: bounded cardinality
    latency = _samples(text, "pointsvc_http_request_duration_seconds_count")
    key = tuple(sorted({"method": "GET", "endpoint": endpoint}.items()))
    assert latency[key] >= 4


def test_unmatched_paths_share_one_label(client):
    before = _count(client, "GET", "unmatched", "404")
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")
    assert _count(client, "GET", "unmatched", "404") == before + 2
