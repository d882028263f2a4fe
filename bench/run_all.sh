#!/bin/sh
# Run every benchmark in turn (10-25 minutes on 2 cores; big_ledger seeds 10M entries).
# Each prints its figures and keeps them in bench/results/<name>-<UTC time>.json.
# Settings: BENCH_DURATION (s, default 15), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_WORKERS (gunicorn workers, 4), BENCH_ROUNDS (interleaved rounds, 2),
# BENCH_BIG_TRANSACTIONS (5000000), BENCH_PG_ADMIN (postgresql://postgres@127.0.0.1:5432/postgres).
set -e
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
for name in me_vs_hello import_10k awards hot_issuance bulk_10k verify_rate big_ledger redemption; do
    echo "=== $name ==="
    "$PYTHON" -m bench.run "$name"
done
