"""Where a request's time goes: cProfile of GET /api/v1/me and POST /api/v1/awards in-process.

`python -m bench.profile_requests` (not a benchmark: a diagnosis aid for the reports).
"""

from __future__ import annotations

from . import common as c
from .awards import seed

NAME = "profile"


def main() -> None:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world, ids = seed(app, url, communities=2, per_community=500)
        from pointsvc.extensions import db
        from pointsvc.people.models import Resident

        with app.app_context():
            resident_user = db.session.get(Resident, ids[0]).user_id
        client = app.test_client()
        me = {"Authorization": f"Bearer {c.token(app, resident_user)}"}
        staff = {"Authorization": f"Bearer {c.token(app, world.organizer)}"}
        for _ in range(50):  # warm caches (compiled statements, imports)
            client.get("/api/v1/me", headers=me)

        def many_me() -> None:
            for _ in range(500):
                client.get("/api/v1/me", headers=me)

        counter = iter(range(10**9))

        def many_awards() -> None:
            for n in range(300):
                client.post("/api/v1/awards", headers={**staff,
                            "Idempotency-Key": f"p-{next(counter)}"},
                            json={"resident_id": ids[n % len(ids)],
                                  "rule_code": "garbage-sorting", "quantity": 1})

        many_awards()
        for label, func in (("500 x GET /api/v1/me", many_me),
                            ("300 x POST /api/v1/awards", many_awards)):
            print(f"== {label} ==")
            for line in c.cprofile_top(func, limit=30, contains=""):
                print("  ", line)


if __name__ == "__main__":
    main()
