"""Rendering a check-in code as PNG (and SVG): the renderer alone and the whole request.

In-process, no HTTP: `render.png_rotating(link)` (fixed mask; `render.png`, which searches
the eight masks, for comparison) for 500 fresh check-in links (one per 30-s step, as a
kiosk sees them), and GET /api/v1/events/{id}/checkin-code?format=png through the test
client (authorisation, code issue, render). Target (issue #4): PNG median <= 5 ms.

`python -m bench.run events_render`
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from . import common as c
from .events_checkin import make_event

NAME = "events_render"
COUNT = 500


def _timed(fn, count: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Wall-clock percentiles, and the median CPU time of this process per call (steadier
    than wall time on a shared, oversubscribed machine)."""
    samples, cpu = [], []
    for n in range(count):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn(n)
        cpu.append((time.process_time() - started_cpu) * 1000)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median_ms": round(statistics.median(samples), 2),
            "p90_ms": round(samples[int(count * 0.9)], 2),
            "p99_ms": round(samples[int(count * 0.99)], 2),
            "cpu_median_ms": round(statistics.median(cpu), 2)}


def main() -> dict:
    from pointsvc.codes import CHECKIN, code_link, issue_code, render

    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=1)
        event_id = make_event(app, world.communities[0], world.organizer, "渲染基准")
        with app.app_context():
            links = [code_link(CHECKIN, issue_code(CHECKIN, event_id=event_id, direction=0,
                                                   step=60_000_000 + n)) for n in range(COUNT)]
            version = render.qr_version(links[0])
        png = _timed(lambda n: render.png_rotating(links[n]), COUNT)
        png_searched = _timed(lambda n: render.png(links[n]), COUNT)
        svg = _timed(lambda n: render.svg(links[n], mask_pattern=render.ROTATING_MASK), COUNT)
        token = c.token(app, world.organizer)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}

        def request(_n: int) -> None:
            r = client.get(f"/api/v1/events/{event_id}/checkin-code?format=png",
                           headers=headers)
            if r.status_code != 200 or r.mimetype != "image/png":
                raise RuntimeError(f"{r.status_code} {r.data[:200]!r}")

        endpoint = _timed(request, 300)
        summary = {"png_median_ms": png["median_ms"], "png_cpu_median_ms": png["cpu_median_ms"],
                   "png_p90_ms": png["p90_ms"],
                   "png_p99_ms": png["p99_ms"], "svg_median_ms": svg["median_ms"],
                   "png_with_mask_search_median_ms": png_searched["median_ms"],
                   "png_with_mask_search_cpu_median_ms": png_searched["cpu_median_ms"],
                   "endpoint_png_median_ms": endpoint["median_ms"],
                   "endpoint_png_cpu_median_ms": endpoint["cpu_median_ms"],
                   "endpoint_png_p90_ms": endpoint["p90_ms"], "qr_version": version,
                   "link_length": len(links[0]), "png_bytes": len(render.png_rotating(links[0])),
                   "target": "PNG median <= 5 ms", "met": png["median_ms"] <= 5,
                   "load_average": Path("/proc/loadavg").read_text().split()[0]}
        c.report(NAME, summary)
        return summary


if __name__ == "__main__":
    main()
