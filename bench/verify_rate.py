"""`flask ledger verify` on 110,000 real transactions. Target: >= 100,000 tx/s.

The transactions go through post_many() (the bulk form of the ledger's one door), so every
content hash is the real canonical hash. verify runs twice: before any seal (content hashes
only) and after `flask ledger seal` (content hashes, then every seal's leaves, root and
signature), then once more with --independent (every hash recomputed in Python rather than
first by PostgreSQL). Baseline: reading the same rows with psycopg and hashing nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

from . import common as c

NAME = "verify_rate"
TRANSACTIONS = int(os.environ.get("BENCH_VERIFY_TRANSACTIONS", "110000"))
BATCH = 10_000


def post_awards(app, world: c.World, resident_ids: list[int]) -> float:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from pointsvc.extensions import db
    from pointsvc.ledger.models import Account
    from pointsvc.ledger.service import Leg, Transfer, district_of, post_many

    started = time.perf_counter()
    with app.app_context():
        district = district_of(community_id=world.communities[0])
        accounts = dict(db.session.execute(
            select(Account.owner_id, Account.id).where(Account.kind == "resident")).all())
        community_of = dict(db.session.execute(
            select(Account.owner_id, Account.community_id).where(Account.kind == "resident")
        ).all())
        issuance = dict(db.session.execute(
            select(Account.community_id, Account.id).where(Account.kind == "issuance")).all())
        done = 0
        while done < TRANSACTIONS:
            transfers = []
            for n in range(done, min(done + BATCH, TRANSACTIONS)):
                resident = resident_ids[n % len(resident_ids)]
                community = community_of[resident]
                transfers.append(Transfer(
                    kind="award", community_id=community, district_id=district,
                    legs=(Leg(issuance[community], -5), Leg(accounts[resident], 5)),
                    actor_user_id=world.organizer, rule_code="garbage-sorting", rule_version=1,
                    category="environment", quantity=1, subject_resident_id=resident,
                    memo="扫码分类投放" if n % 10 == 0 else None))
            post_many(transfers=transfers)
            db.session.commit()
            done += len(transfers)
            c.log(f"  {done:,} transactions posted ({time.perf_counter() - started:.0f} s)")
    return time.perf_counter() - started


def flask_command(url: str, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([str(c.VENV_BIN / "flask"), *args], cwd=c.ROOT,
                            env={**os.environ, **c.app_env(url)}, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)}: {result.stdout}{result.stderr}")
    return elapsed, (result.stdout + result.stderr).strip()


def raw_read(url: str) -> float:
    """Seconds to stream every transaction and its entries with psycopg, hashing nothing."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(c.psycopg_url(url)) as conn:
        rows = 0
        for _ in conn.cursor(name="tx").execute("SELECT * FROM ledger_transactions ORDER BY id"):
            rows += 1
        for _ in conn.cursor(name="e").execute(
                "SELECT transaction_id, account_id, amount, balance_after FROM ledger_entries "
                "ORDER BY transaction_id"):
            rows += 1
    return time.perf_counter() - started


def main() -> dict:
    with c.bench_database(NAME) as url:
        app = c.make_app(url)
        world = c.seed_world(app, communities=10)
        ids = c.copy_residents(url, community_ids=world.communities, per_community=1000)
        c.open_accounts(app, ids)
        posting = post_awards(app, world, ids)
        c.analyze(url)
        unsealed_s, unsealed_out = flask_command(url, "ledger", "verify")
        c.log(unsealed_out)
        seal_s, seal_out = flask_command(url, "ledger", "seal")
        c.log(f"flask ledger seal: {seal_s:.1f} s; last line: {seal_out.splitlines()[-1]}")
        sealed_s, sealed_out = flask_command(url, "ledger", "verify")
        c.log(sealed_out)
        independent_s, independent_out = flask_command(url, "ledger", "verify", "--independent")
        c.log(f"--independent: {independent_out}")
        raw = raw_read(url)
        c.log(f"raw read of the same rows: {raw:.2f} s")

        def rate(output: str) -> int:
            found = re.search(r"\(([\d.]+) s, ([\d,]+) tx/s\)", output)
            return int(found.group(2).replace(",", "")) if found else 0

        summary = {
            "transactions": TRANSACTIONS,
            "posting_s": round(posting, 1),
            "verify_unsealed_tx_per_s": rate(unsealed_out),
            "verify_unsealed_wall_s": round(unsealed_s, 2),
            "seal_s": round(seal_s, 2),
            "verify_sealed_tx_per_s": rate(sealed_out),
            "verify_sealed_wall_s": round(sealed_s, 2),
            "verify_independent_tx_per_s": rate(independent_out),
            "verify_independent_wall_s": round(independent_s, 2),
            "raw_read_tx_per_s": round(TRANSACTIONS / raw),
            "target": ">= 100,000 tx/s",
            "met": min(rate(unsealed_out), rate(sealed_out)) >= 100_000,
        }
        c.report(NAME, summary)
        from pointsvc.ledger.checks import verify_ledger

        with app.app_context():
            hot = c.cprofile_top(verify_ledger, limit=12, contains="")
        print("  in-process cProfile of verify_ledger():")
        for line in hot:
            print("   ", line)
        return summary


if __name__ == "__main__":
    main()
