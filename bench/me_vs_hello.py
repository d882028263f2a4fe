"""GET /api/v1/me with a valid token vs a bare Flask "hello", both under gunicorn.

Target: ratio >= 0.5. When it is below, one worker is profiled with py-spy while wrk runs
and the hottest frames are printed; the handler's own time and its SQL statement count are
measured in-process too.
"""

from __future__ import annotations

import threading

from . import common as c

NAME = "me_vs_hello"


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=1)
        resident = c.copy_residents(url, community_ids=world.communities, per_community=1)[0]
        from pointsvc.extensions import db
        from pointsvc.people.models import Resident

        with app.app_context():
            user_id = db.session.get(Resident, resident).user_id
        token = c.token(app, user_id)
        bearer = f"Authorization: Bearer {token}"
        inproc = c.in_process(app, "GET", "/api/v1/me",
                              headers={"Authorization": f"Bearer {token}"}, count=500)
        c.log(f"in-process GET /api/v1/me: {inproc}")
        with c.gunicorn("hello", "bench.baselines.hello:app", env={}) as hello, \
                c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            runs = c.alternate([
                ("hello", lambda: c.wrk("hello", hello.url + "/hello", server=hello)),
                ("me", lambda: c.wrk("GET /api/v1/me", server.url + "/api/v1/me",
                                     headers=[bearer], server=server)),
            ])
            base, me = c.median_run(runs["hello"]), c.median_run(runs["me"])
            ratio = me.rps / base.rps
            hot: list[tuple[str, float]] = []
            if ratio < 0.5:
                out = c.RESULTS / f"{NAME}-profile.txt"
                c.RESULTS.mkdir(exist_ok=True)
                spy = threading.Thread(target=c.profile_worker, args=(server, 10, out))
                spy.start()
                c.wrk("GET /api/v1/me (profiled)", server.url + "/api/v1/me",
                      headers=[bearer], duration=12)
                spy.join()
                if out.exists():
                    hot = c.top_frames(out, limit=60)
        summary = {
            "me_rps": round(me.rps), "me_p50_ms": me.p50_ms, "me_p99_ms": me.p99_ms,
            "hello_rps": round(base.rps), "hello_p50_ms": base.p50_ms,
            "hello_p99_ms": base.p99_ms,
            "ratio": round(ratio, 3), "target": ">= 0.5", "met": ratio >= 0.5,
            "me_rps_rounds": [round(r.rps) for r in runs["me"]],
            "hello_rps_rounds": [round(r.rps) for r in runs["hello"]],
            "in_process_me": inproc,
        }
        c.report(NAME, summary, runs["hello"] + runs["me"])
        for frame, share in hot:
            print(f"  {share:6.1%}  {frame}")
        return summary


if __name__ == "__main__":
    main()
