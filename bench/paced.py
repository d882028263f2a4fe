"""Paced clients: each pauses a random 0..2x `pause_ms` after an answer before its next
request, on a new connection per request, and every request's latency is kept.

Why not wrk's `delay()`: gunicorn's sync workers close the connection after each answer; wrk
reconnects at once and then pauses holding an idle connection, which a sync worker accepts
and then waits on for the whole pause (the slow-client problem that a buffering proxy
removes in production). Measured that way, a bare WSGI app at a third of its capacity showed
a p50 of 110 ms. Here a client opens its connection only when its request is ready, as a
till behind a proxy is seen by the server.

Clients run as threads in a few forked processes (the GIL of one process would add its own
queueing to the latencies at a few hundred requests per second).
"""

from __future__ import annotations

import http.client
import multiprocessing
import random
import threading
import time
from typing import Any

from . import common as c

Request = tuple[dict[str, str], bytes]  # headers, body


def _client(host: str, port: int, path: str, requests: list[Request], pause_ms: int,
            deadline: float, seed: int, out: list[tuple[float, int]]) -> None:
    rng = random.Random(seed)
    for headers, body in requests:
        time.sleep(rng.uniform(0, 2 * pause_ms) / 1000)
        if time.monotonic() >= deadline:
            return
        started = time.perf_counter()
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except OSError:
            status = 0
        finally:
            conn.close()
        out.append(((time.perf_counter() - started) * 1000, status))
    out.append((-1.0, -1))  # this client ran out of prepared requests before the deadline


def _process(args: tuple[Any, ...]) -> list[tuple[float, int]]:
    host, port, path, per_client, pause_ms, seconds, first_seed = args
    deadline = time.monotonic() + seconds
    results: list[list[tuple[float, int]]] = [[] for _ in per_client]
    threads = [threading.Thread(target=_client, args=(host, port, path, requests, pause_ms,
                                                      deadline, first_seed + n, results[n]))
               for n, requests in enumerate(per_client)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [item for result in results for item in result]


def paced(label: str, server: c.Server, path: str, per_client: list[list[Request]], *,
          pause_ms: int, seconds: int = c.DURATION, processes: int = 4) -> c.WrkResult:
    """Run len(per_client) paced clients for `seconds`; refuse the figures on any non-2xx."""
    groups = [per_client[n::processes] for n in range(processes)]
    pids = c.worker_pids(server)
    cpu_before = c.cpu_seconds(pids)
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_process, [("127.0.0.1", server.port, path, group, pause_ms, seconds,
                                     1000 * n) for n, group in enumerate(groups)])
    elapsed = time.perf_counter() - started
    cpu_used = c.cpu_seconds(pids) - cpu_before
    answers = [item for part in parts for item in part]
    if any(status == -1 for _, status in answers):
        raise RuntimeError(f"{label}: a client ran out of prepared requests")
    latencies = sorted(ms for ms, _ in answers)
    bad = sum(1 for _, status in answers if not 200 <= status < 300)
    if not latencies:
        raise RuntimeError(f"{label}: no request was answered")

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * q))], 2)

    result = c.WrkResult(
        label=label, requests=len(latencies), seconds=round(elapsed, 2),
        rps=len(latencies) / elapsed, p50_ms=pct(0.5), p90_ms=pct(0.9), p99_ms=pct(0.99),
        non_2xx=bad, socket_errors="",
        command=f"bench.paced: {len(per_client)} clients, pause 0..{2 * pause_ms} ms, "
                f"{seconds} s, a new connection per request",
        extra={"worker_cpu_ms_per_request": round(cpu_used * 1000 / len(latencies), 2)})
    c.log(f"{label}: {result.rps:,.0f} req/s  p50 {result.p50_ms:.1f} ms  p99 "
          f"{result.p99_ms:.1f} ms  ({result.requests} requests, non-2xx {bad}, cpu/req "
          f"{result.extra['worker_cpu_ms_per_request']} ms)")
    if bad:
        raise RuntimeError(f"{label}: {bad} answers were not 2xx")
    return result
