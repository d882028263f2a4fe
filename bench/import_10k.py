"""Import 10,000 residents from a CSV through POST /api/v1/residents/import. Target: <= 10 s.

The file: 10,000 rows over 10 communities, three residents to a household, UTF-8,
sent as text/csv by an organizer of the district. Three imports of fresh files (the first on
an empty database). Baseline: the same users + residents written by COPY with psycopg.
"""

from __future__ import annotations

import time

from . import common as c

NAME = "import_10k"
ROWS = 10_000


def csv_file(communities: list[int], batch: int) -> bytes:
    lines = ["name,phone,community_id,grid_id,household,is_minor"]
    for n in range(ROWS):
        phone = f"1{5 + batch}{n:09d}"
        # Row n goes to community n % 10; its j-th resident there shares a household with
        # the next two (three to a household, labels reused by later files).
        j = n // len(communities)
        lines.append(f"居民{batch}-{n},{phone},{communities[n % len(communities)]},,"
                     f"{j // 30 + 1}幢{j // 3 % 10 + 1}01室,{'是' if n % 17 == 0 else '否'}")
    return ("\n".join(lines) + "\n").encode()


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=10)
        timings = []
        with c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            for batch in range(3):
                data = csv_file(world.communities, batch)
                token = c.token(app, world.organizer)
                started = time.perf_counter()
                status, body = c.http_json("POST", server.url + "/api/v1/residents/import",
                                           token=token, data=data, content_type="text/csv")
                elapsed = time.perf_counter() - started
                if status != 200 or body.get("created") != ROWS:
                    raise RuntimeError(f"import {batch}: {status} {str(body)[:800]}")
                c.log(f"import {batch + 1}: {ROWS} residents ({len(data) / 1024:.0f} KiB, "
                      f"{body.get('households_created')} households) in {elapsed:.2f} s")
                timings.append(round(elapsed, 3))
        copy_started = time.perf_counter()
        c.copy_residents(url, community_ids=world.communities, per_community=ROWS // 10,
                         phone_prefix="19")
        raw = round(time.perf_counter() - copy_started, 3)
        c.log(f"raw COPY of {ROWS} users + residents: {raw} s")
        client = app.test_client()
        token = c.token(app, world.organizer)
        data = csv_file(world.communities, 3)
        hot = c.cprofile_top(lambda: client.post(
            "/api/v1/residents/import", data=data, content_type="text/csv",
            headers={"Authorization": f"Bearer {token}"}), limit=20)
        summary = {
            "import_s": timings, "best_s": min(timings), "worst_s": max(timings),
            "rows_per_s": round(ROWS / min(timings)), "raw_copy_s": raw,
            "ratio_raw_over_app": round(raw / min(timings), 3),
            "target": "<= 10 s", "met": max(timings) <= 10,
        }
        c.report(NAME, summary)
        print("  in-process cProfile of one import (pointsvc frames):")
        for line in hot:
            print("   ", line)
        return summary


if __name__ == "__main__":
    main()
