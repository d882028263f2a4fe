"""Is a community's issuance account a hot row? Awards into ONE community vs 100.

Every award debits its community's issuance account. The service spreads that debit over
16 shard rows (ledger_account_shards), so awards inside one community should run about as
fast as awards spread over 100 communities (each with its own issuance account).
Target: one-community / hundred-communities >= 0.9.

For context, the same comparison in raw SQL (bench/baselines/raw_award.py): the debit on
one hot row (the account row itself), on a random shard, and no issuance update at all.
"""

from __future__ import annotations

from . import common as c
from .awards import award_wrk

NAME = "hot_issuance"


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=101)
        one = c.copy_residents(url, community_ids=world.communities[:1], per_community=10_000)
        spread = c.copy_residents(url, community_ids=world.communities[1:], per_community=100)
        c.open_accounts(app, one + spread)
        one_span, spread_span = c.contiguous(one), c.contiguous(spread)
        c.analyze(url)
        with c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            runs = c.alternate([
                ("spread", lambda: award_wrk("awards over 100 communities", server,
                                             "/api/v1/awards", spread_span,
                                             c.token(app, world.organizer))),
                ("one", lambda: award_wrk("awards in 1 community", server, "/api/v1/awards",
                                          one_span, c.token(app, world.organizer))),
            ])
        one_run, spread_run = c.median_run(runs["one"]), c.median_run(runs["spread"])
        ratio = one_run.rps / spread_run.rps
        raw_runs: dict[str, c.WrkResult] = {}
        for mode in ("none", "shard", "hotrow"):
            env = {"BENCH_DSN": c.psycopg_url(url), "BENCH_ISSUANCE_MODE": mode}
            with c.gunicorn(f"raw-{mode}", "bench.baselines.raw_award:app", env=env) as raw:
                raw_runs[mode] = award_wrk(f"raw award, issuance {mode}, 1 community", raw,
                                           "/award", one_span, "-")
        summary = {
            "one_community_per_s": round(one_run.rps), "one_p99_ms": one_run.p99_ms,
            "hundred_communities_per_s": round(spread_run.rps),
            "hundred_p99_ms": spread_run.p99_ms,
            "ratio": round(ratio, 3), "target": ">= 0.9", "met": ratio >= 0.9,
            "one_rps_rounds": [round(r.rps) for r in runs["one"]],
            "hundred_rps_rounds": [round(r.rps) for r in runs["spread"]],
            "raw_no_issuance_update_per_s": round(raw_runs["none"].rps),
            "raw_shard_per_s": round(raw_runs["shard"].rps),
            "raw_single_hot_row_per_s": round(raw_runs["hotrow"].rps),
            "raw_hot_row_vs_none": round(raw_runs["hotrow"].rps / raw_runs["none"].rps, 3),
            "raw_shard_vs_none": round(raw_runs["shard"].rps / raw_runs["none"].rps, 3),
        }
        c.report(NAME, summary, runs["one"] + runs["spread"] + list(raw_runs.values()))
        return summary


if __name__ == "__main__":
    main()
