"""gunicorn with two workers: /metrics sums every worker's counts (multiprocess mode)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import TEST_SECRETS

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = Path(sys.executable).with_name("gunicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()


def _count(text: str, endpoint: str, status: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == "pointsvc_http_requests_total"
                and labels.get("endpoint") == endpoint
                and labels.get("status") == status
            ):
                total += sample.value
    return total


@pytest.mark.slow
def test_metrics_are_summed_across_gunicorn_workers(sqlite_template, tmp_path):
    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed in this environment")
    database = tmp_path / "served.db"
    shutil.copyfile(sqlite_template, database)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale file of an earlier run")
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("POINTSVC_", "PROMETHEUS_"))
    }
    env.update({f"POINTSVC_{name}": value for name, value in TEST_SECRETS.items()})
    env.update(
        POINTSVC_DATABASE_URL=f"sqlite:///{database}",
        POINTSVC_WORKERS="2",
        POINTSVC_LOG_REQUESTS="0",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    log = (tmp_path / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [str(GUNICORN), "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if _get(base + "/readyz")[0] == 200:
                    break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            assert time.monotonic() < deadline, "gunicorn did not become ready"
            time.sleep(0.2)
        assert not (metrics_dir / "counter_999999.db").exists(), "stale metrics were kept"

        sent = 0
        # Concurrent requests keep both sync workers busy; repeat until both have counted.
        with ThreadPoolExecutor(max_workers=8) as pool:
            for _ in range(10):
                statuses = list(pool.map(lambda _: _get(base + "/healthz")[0], range(40)))
                assert statuses == [200] * 40
                sent += 40
                owners = {p.name.split("_")[-1] for p in metrics_dir.glob("counter_*.db")}
                if len(owners) >= 2:
                    break
        assert len(owners) >= 2, f"only one worker served requests: {owners}"
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(lambda n: _get(f"{base}/api/v1/orgs/{n}")[0], range(30)))
        assert statuses == [401] * 30

        # Whichever worker answers /metrics reports the sum over both.
        for _ in range(4):
            status, text = _get(base + "/metrics")
            assert status == 200
            assert _count(text, "/healthz", "200") == sent
            assert _count(text, "/api/v1/orgs/<int:node_id>", "401") == 30
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its exit status waits to be collected


def _wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["terminate", "kill"])
def test_a_drainer_process_runs_beside_the_workers_and_ends_with_them(sqlite_template,
                                                                      tmp_path, stop):
    import re
    import signal
    import sqlite3

    if not GUNICORN.exists():
        pytest.skip("gunicorn is not installed in this environment")
    database = tmp_path / "served.db"
    shutil.copyfile(sqlite_template, database)
    # A queued posting id without a transaction: the drainer folds nothing and dequeues it.
    with sqlite3.connect(database) as conn:
        conn.execute("INSERT INTO leaderboard_outbox (transaction_id) VALUES (424242)")
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("POINTSVC_", "PROMETHEUS_"))}
    env.update({f"POINTSVC_{name}": value for name, value in TEST_SECRETS.items()})
    env.update(POINTSVC_DATABASE_URL=f"sqlite:///{database}", POINTSVC_WORKERS="1",
               POINTSVC_LOG_REQUESTS="0", POINTSVC_LEADERBOARD_DRAIN_SECONDS="1",
               PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(GUNICORN), "--config", "gunicorn.conf.py", "--bind",
             f"127.0.0.1:{_free_port()}", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        # No request is sent: a worker's stand-by thread starts with its first request, so
        # whatever drains the queue here is the drainer process.
        _wait_for(lambda: "leaderboard drainer started" in log_path.read_text(), 30,
                  "no drainer process was started")
        drainer = int(re.search(r"leaderboard drainer started \(pid (\d+)\)",
                                log_path.read_text()).group(1))
        command = Path(f"/proc/{drainer}/cmdline").read_bytes().split(b"\0")
        assert command[-6:-1] == [b"leaderboards", b"drain", b"--follow", b"--parent",
                                  str(process.pid).encode()]

        def queued() -> int:
            with sqlite3.connect(database) as conn:
                return conn.execute("SELECT COUNT(*) FROM leaderboard_outbox").fetchone()[0]

        _wait_for(lambda: queued() == 0, 30, "the drainer process did not drain the queue")
        if stop == "terminate":  # gunicorn's on_exit stops it
            process.terminate()
        else:  # a master killed outright: the drainer notices it was orphaned
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=20)
        _wait_for(lambda: not _alive(drainer), 20, "the drainer outlived gunicorn")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_following_drainer_whose_parent_is_gone_stops(sqlite_template, tmp_path):
    # Orphaned before its first tick (the master died while it started): it must not drain
    # on forever. Its parent here is this test, never pid 1.
    database = tmp_path / "served.db"
    shutil.copyfile(sqlite_template, database)
    env = {key: value for key, value in os.environ.items() if not key.startswith("POINTSVC_")}
    env.update({f"POINTSVC_{name}": value for name, value in TEST_SECRETS.items()})
    env.update(POINTSVC_DATABASE_URL=f"sqlite:///{database}",
               POINTSVC_LEADERBOARD_DRAIN_SECONDS="1")
    finished = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi:app", "leaderboards", "drain",
         "--follow", "--parent", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert "draining every 1 s" in finished.stdout
