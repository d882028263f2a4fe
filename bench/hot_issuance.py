"""Is a community's issuance account a hot row? Awards into ONE community vs 100.

Every award debits its community's issuance account. The service spreads that debit over
16 shard rows (ledger_account_shards), so awards inside one community should run about as
fast as awards spread over 100 communities (each with its own issuance account).
Target: one-community / hundred-communities >= 0.9.

For context, DESIGN.md §7's raw-SQL comparison with pgbench at 32 clients (awards inside
one community): the issuance debit on one hot row (the account row itself), on one of 16
shard rows at random (what the service does), and no issuance update at all.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from . import common as c
from .awards import award_wrk

NAME = "hot_issuance"

ISSUANCE_DEBIT = {
    "none": "",
    "shard": "UPDATE ledger_account_shards SET balance = balance - 5 "
             "WHERE account_id = :iss AND shard = :s;",
    "hotrow": "UPDATE ledger_accounts SET balance = balance - 5 WHERE id = :iss;",
}


def pgbench_award(url: str, mode: str, span: tuple[int, int], community: int) -> dict:
    """Raw award transactions with pgbench: 32 clients, 2 threads, DURATION seconds."""
    import psycopg

    with psycopg.connect(c.psycopg_url(url)) as conn:
        issuance, district = conn.execute(
            "SELECT id, district_id FROM ledger_accounts WHERE kind = 'issuance' "
            "AND community_id = %s", (community,)).fetchone()
    script = f"""\\set r random({span[0]}, {span[1]})
\\set s random(0, 15)
\\set iss {issuance}
BEGIN;
UPDATE ledger_accounts SET balance = balance + 5, total_credited = total_credited + 5
  WHERE kind = 'resident' AND owner_id = :r RETURNING id AS acct, balance AS bal \\gset
{ISSUANCE_DEBIT[mode]}
INSERT INTO ledger_transactions (kind, community_id, district_id, rule_code, rule_version,
  category, quantity, subject_resident_id, actor_user_id, shortfall, amount, created_at,
  content_hash)
  VALUES ('award', {community}, {district}, 'garbage-sorting', 1, 'environment', 1, :r, 1, 0,
  5, now(), md5(random()::text) || md5(random()::text)) RETURNING id AS tx \\gset
INSERT INTO ledger_entries (transaction_id, account_id, amount, balance_after, community_id,
  district_id) VALUES (:tx, :iss, -5, NULL, {community}, {district}),
  (:tx, :acct, 5, :bal, {community}, {district});
END;
"""
    path = Path(tempfile.gettempdir()) / f"bench-award-{mode}.sql"
    path.write_text(script)
    dsn = c.psycopg_url(url)
    out = subprocess.run(
        ["pgbench", "-n", "-c", str(c.CONNECTIONS), "-j", str(c.THREADS), "-T",
         str(c.DURATION), "-f", str(path), dsn], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench {mode}: {out.stdout}{out.stderr}")
    tps = float(re.search(r"tps = ([\d.]+)", out.stdout).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([\d.]+) ms",  # type: ignore[union-attr]
                              out.stdout).group(1))
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    result = {"mode": mode, "tps": round(tps), "latency_avg_ms": latency,
              "failed": int(failed.group(1)) if failed else 0,
              "command": f"pgbench -n -c {c.CONNECTIONS} -j {c.THREADS} -T {c.DURATION} "
                         f"-f {path.name} <db>"}
    c.log(f"pgbench raw award, issuance {mode}: {result}")
    return result


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=101)
        one = c.copy_residents(url, community_ids=world.communities[:1], per_community=10_000)
        spread = c.copy_residents(url, community_ids=world.communities[1:], per_community=100)
        c.open_accounts(app, one + spread)
        one_span, spread_span = c.contiguous(one), c.contiguous(spread)
        c.warm_ledger(app, url, organizer=world.organizer, resident_ids=one + spread)
        with c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            runs = c.alternate([
                ("spread", lambda: award_wrk("awards over 100 communities", server,
                                             "/api/v1/awards", spread_span,
                                             c.token(app, world.organizer))),
                ("one", lambda: award_wrk("awards in 1 community", server, "/api/v1/awards",
                                          one_span, c.token(app, world.organizer))),
            ])
        one_run, spread_run = c.median_run(runs["one"]), c.median_run(runs["spread"])
        ratio = c.mean_rps(runs["one"]) / c.mean_rps(runs["spread"])
        raw_runs = {mode: pgbench_award(url, mode, one_span, world.communities[0])
                    for mode in ("none", "shard", "hotrow")}
        summary = {
            "one_community_per_s": round(c.mean_rps(runs["one"])),
            "one_p99_ms": one_run.p99_ms,
            "hundred_communities_per_s": round(c.mean_rps(runs["spread"])),
            "hundred_p99_ms": spread_run.p99_ms,
            "ratio": round(ratio, 3), "target": ">= 0.9", "met": ratio >= 0.9,
            "one_rps_rounds": [round(r.rps) for r in runs["one"]],
            "hundred_rps_rounds": [round(r.rps) for r in runs["spread"]],
            "ratio_of": "mean awards/s over the rounds (A B, B A, ...), one / hundred",
            "pgbench_no_issuance_update_tps": raw_runs["none"]["tps"],
            "pgbench_shard_tps": raw_runs["shard"]["tps"],
            "pgbench_single_hot_row_tps": raw_runs["hotrow"]["tps"],
            "pgbench_hot_row_vs_none": round(raw_runs["hotrow"]["tps"] / raw_runs["none"]["tps"],
                                             3),
            "pgbench_shard_vs_none": round(raw_runs["shard"]["tps"] / raw_runs["none"]["tps"], 3),
            "pgbench": raw_runs,
        }
        c.report(NAME, summary, runs["one"] + runs["spread"])
        return summary


if __name__ == "__main__":
    main()
