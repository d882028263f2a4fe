"""Shared machinery of the benchmarks: databases, servers, wrk, seeding and reporting.

Every benchmark creates its own PostgreSQL database, migrates it with Flask-Migrate, seeds
what it needs, serves the app and a bare baseline under gunicorn in the same run, drives
both with wrk and prints the figures and their ratio. Nothing here is part of the tests.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LUA = BENCH / "lua"
RESULTS = BENCH / "results"
VENV_BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_BASE = PG_ADMIN.rsplit("/", 1)[0]

DURATION = int(os.environ.get("BENCH_DURATION", "15"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))


def _fixed(label: str) -> str:
    """A fixed 32-byte key (base64) per setting: benchmarks need no instance/secrets.json."""
    import hashlib

    return base64.urlsafe_b64encode(hashlib.sha256(f"bench-{label}".encode()).digest()).decode()


def app_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment for the app (in gunicorn, in flask commands and in this process)."""
    env = {
        "POINTSVC_DATABASE_URL": database_url,
        "POINTSVC_JWT_SECRET": _fixed("jwt"),
        "POINTSVC_QR_MAC_KEY": _fixed("qr"),
        "POINTSVC_ED25519_PRIVATE_KEY": _fixed("ed25519"),
        "POINTSVC_SECRET_KEY": _fixed("secret"),
        "POINTSVC_LOG_REQUESTS": "0",
        "POINTSVC_LEDGER_SEAL_SECONDS": "0",
        "FLASK_APP": "wsgi:app",
    }
    env.update(extra)
    return env


# --- databases -----------------------------------------------------------------------------


def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def bench_database(name: str, *, keep: bool = False) -> Iterator[str]:
    """Create pointsvc_bench_<name>, migrate it to heads, yield its SQLAlchemy URL, drop it."""
    db_name = f"pointsvc_bench_{name}"
    _admin_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{db_name}"')
    url = f"postgresql+psycopg://{PG_BASE.split('://', 1)[1]}/{db_name}"
    try:
        started = time.perf_counter()
        subprocess.run(
            [str(VENV_BIN / "flask"), "db", "upgrade", "heads"],
            cwd=ROOT, env={**os.environ, **app_env(url)}, check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        log(f"database {db_name} created and migrated in {time.perf_counter() - started:.1f} s")
        yield url
    finally:
        if not keep:
            _admin_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            log(f"database {db_name} dropped")


def psycopg_url(sqlalchemy_url: str) -> str:
    return sqlalchemy_url.replace("postgresql+psycopg://", "postgresql://")


_APP = None


def make_app(database_url: str):  # type: ignore[no-untyped-def]
    """The app in this process, configured exactly as the gunicorn workers are."""
    global _APP
    os.environ.update(app_env(database_url))
    from pointsvc import create_app

    _APP = create_app()
    return _APP


# --- servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextlib.contextmanager
def gunicorn(
    name: str, target: str, *, env: dict[str, str], workers: int = WORKERS,
    health: str = "/healthz", extra_args: list[str] | None = None,
) -> Iterator[Server]:
    """gunicorn <target> on a free port; waits until `health` answers; stops it afterwards."""
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / f"bench-{name}-{port}.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(VENV_BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--backlog", "2048", "--timeout", "120", *(extra_args or []), target],
        cwd=ROOT, env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(name, port, process, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                tail = log_path.read_text()[-3000:]
                raise RuntimeError(f"{name} exited; see {log_path}:\n{tail}")
            try:
                with urllib.request.urlopen(server.url + health, timeout=2) as response:
                    if response.status < 500:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log_path}")
            time.sleep(0.2)
        # Warm every worker (imports, connection pools) before anything is measured.
        for _ in range(workers * 8):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(server.url + health, timeout=5).read()
        log(f"{name}: gunicorn {target} -w {workers} on port {port}")
        yield server
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log_file.close()


def worker_pids(server: Server) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True,
                         text=True).stdout
    return [int(pid) for pid in out.split()]


# --- wrk ------------------------------------------------------------------------------------


@dataclass
class WrkResult:
    label: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: str
    command: str
    extra: dict[str, Any] = field(default_factory=dict)


def _ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def wrk(
    label: str, url: str, *, script: str | None = None, script_args: list[str] | None = None,
    headers: list[str] | None = None, duration: int = DURATION, connections: int = CONNECTIONS,
    threads: int = THREADS, server: Server | None = None,
) -> WrkResult:
    """Run wrk with latency percentiles; refuse the figures if any response was not 2xx/3xx.

    With `server`, also the CPU time its workers spent per request (less sensitive to a
    busy neighbour on a shared machine than req/s)."""
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{duration}s", "--latency",
           "--timeout", "10s"]
    for header in headers or []:
        cmd += ["-H", header]
    if script:
        cmd += ["-s", str(LUA / script)]
    cmd.append(url)
    if script_args:
        cmd += ["--", *script_args]
    pids = worker_pids(server) if server else []
    cpu_before = cpu_seconds(pids)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu_used = cpu_seconds(pids) - cpu_before
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M))
    if len(pct) != 4 or "requests in" not in out:
        raise RuntimeError(f"{label}: cannot read wrk's output:\n{out}")
    total = re.search(r"(\d+) requests in ([\d.]+)(s|m)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    seconds = float(total.group(2)) * (60 if total.group(3) == "m" else 1)  # type: ignore[union-attr]
    shown = " ".join(c if " " not in c and len(c) < 80 else repr(c[:40] + "...") for c in cmd)
    result = WrkResult(
        label=label, requests=int(total.group(1)), seconds=seconds,  # type: ignore[union-attr]
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(pct["50"]), p90_ms=_ms(pct["90"]), p99_ms=_ms(pct["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors.group(1) if errors else "",
        command=shown,
    )
    if server and result.requests:
        result.extra["worker_cpu_ms_per_request"] = round(cpu_used * 1000 / result.requests, 2)
    cpu = result.extra.get("worker_cpu_ms_per_request")
    log(f"{label}: {result.rps:,.0f} req/s  p50 {result.p50_ms:.1f} ms  p99 {result.p99_ms:.1f} ms"
        f"  ({result.requests} requests, non-2xx {result.non_2xx}"
        f"{f', cpu/req {cpu} ms' if cpu is not None else ''}"
        f"{', socket errors ' + result.socket_errors if result.socket_errors else ''})")
    if result.non_2xx:
        raise RuntimeError(f"{label}: {result.non_2xx} responses were not 2xx/3xx:\n{out}")
    return result


# --- seeding --------------------------------------------------------------------------------


@dataclass
class World:
    district: int
    street: int
    communities: list[int]
    organizer: int  # organizer on the district: may award anyone in it
    auditor: int


def seed_world(app, *, communities: int = 1) -> World:  # type: ignore[no-untyped-def]
    """A district, a street, N communities, a district organizer and auditor, two rules."""
    from pointsvc.extensions import db
    from pointsvc.ledger import rules as rulebook
    from pointsvc.orgs import service as orgs
    from pointsvc.people.models import UNUSABLE_PASSWORD, RoleGrant, User

    with app.app_context():
        district = orgs.create_district(name_zh="基准区", name_en="Bench District")
        street = orgs.create_child(parent_id=district.id, name_zh="基准街道",
                                   name_en="Bench Street", timezone="Asia/Shanghai")
        community_ids = [
            orgs.create_child(parent_id=street.id, name_zh=f"基准社区{n}",
                              name_en=f"Bench Community {n}", timezone="Asia/Shanghai").id
            for n in range(communities)
        ]
        staff = {}
        for role in ("organizer", "auditor"):
            user = User(username=f"bench-{role}", display_name=f"bench {role}",
                        password_hash=UNUSABLE_PASSWORD)
            db.session.add(user)
            db.session.flush()
            db.session.add(RoleGrant(user_id=user.id, role=role, org_node_id=district.id))
            staff[role] = user.id
        db.session.commit()
        for code, points in (("garbage-sorting", 5), ("volunteer-hour", 10)):
            rulebook.create_rule(
                org_node_id=district.id, actor_user_id=None,
                values={"code": code, "title_zh": f"规则{code}", "title_en": f"Rule {code}",
                        "category": "environment", "points": points,
                        "unit": "hour" if code == "volunteer-hour" else "action"},
            )
        return World(district.id, street.id, community_ids, staff["organizer"], staff["auditor"])


def copy_residents(database_url: str, *, community_ids: list[int], per_community: int,
                   phone_prefix: str = "13") -> list[int]:
    """COPY users + residents (no usable password), round-robin over the communities."""
    import psycopg

    count = per_community * len(community_ids)
    now = datetime.now(UTC).isoformat()
    base = int(time.time() * 1000) % 10**7
    with psycopg.connect(psycopg_url(database_url)) as conn:
        first_phone = int(phone_prefix.ljust(11, "0")) + base * 1000 % 10**8
        phones = [str(first_phone + n) for n in range(count)]
        with conn.cursor().copy(
            "COPY users (phone, display_name, password_hash, is_active, failed_logins, "
            "password_changed_at, created_at) FROM STDIN"
        ) as copy:
            copy.write("".join(f"{p}\t居民{p[-4:]}\t!\tt\t0\t{now}\t{now}\n" for p in phones))
        user_ids = dict(conn.execute(
            "SELECT phone, id FROM users WHERE phone = ANY(%s)", (phones,)).fetchall())
        with conn.cursor().copy(
            "COPY residents (user_id, community_id, is_minor, privacy, created_at) FROM STDIN"
        ) as copy:
            copy.write("".join(
                f"{user_ids[p]}\t{community_ids[n % len(community_ids)]}\tf\tpublic\t{now}\n"
                for n, p in enumerate(phones)))
        ids = [row[0] for row in conn.execute(
            "SELECT r.id FROM residents r JOIN users u ON u.id = r.user_id "
            "WHERE u.phone = ANY(%s) ORDER BY r.id", (phones,))]
        conn.commit()
    return ids


def token(app, user_id: int) -> str:  # type: ignore[no-untyped-def]
    """A valid access token (lifetime: ACCESS_TOKEN_SECONDS, at most 15 minutes)."""
    from pointsvc.security.tokens import issue_access_token

    with app.app_context():
        return issue_access_token(user_id=user_id)[0]


def analyze(database_url: str) -> None:
    import psycopg

    with psycopg.connect(psycopg_url(database_url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def warm_ledger(app, database_url: str, *, organizer: int, resident_ids: list[int],  # type: ignore[no-untyped-def]
                count: int = 1000) -> None:
    """Post `count` awards in-process, then VACUUM ANALYZE: the tables a benchmark writes
    start with the statistics of a ledger in use, not of empty tables.

    This machine's PostgreSQL runs with autovacuum off. Analysed while empty, the ledger
    and idempotency tables kept "empty" statistics for the whole run, so every backend
    planned its foreign-key checks (entries -> transactions) and the idempotency answer's
    `WHERE id = ...` as sequential scans and kept those plans: the database's CPU per award
    doubled within two minutes (1.6 -> 3.3 ms; 181 million rows read by 27,000 scans of
    ledger_transactions, 2026-12-05). In production autovacuum's ANALYZE replaces such plans
    within a minute of the first writes; here this does.
    """
    bearer = token(app, organizer)
    in_process(app, "POST", "/api/v1/awards", headers={"Authorization": f"Bearer {bearer}"},
               count=count, json_body=lambda n: {
                   "resident_id": resident_ids[n * 37 % len(resident_ids)],
                   "rule_code": "garbage-sorting", "quantity": 1})
    analyze(database_url)


def drop_ledger_secondary(conn) -> tuple[list, list]:  # type: ignore[no-untyped-def]
    """Drop the ledger's secondary indexes and unique constraints before a bulk COPY.

    Returns (indexes, constraints) for rebuild_ledger_secondary(); the indexes behind the
    constraints are left out (re-adding the constraint rebuilds them).
    """
    indexes = conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN "
        "('ledger_transactions', 'ledger_entries') AND indexname NOT LIKE 'pk_%'").fetchall()
    constraints = conn.execute(
        "SELECT conname, conrelid::regclass::text, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE contype = 'u' AND conrelid::regclass::text IN "
        "('ledger_transactions', 'ledger_entries')").fetchall()
    for name, table, _definition in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    names = {n for n, _t, _d in constraints}
    for name, _definition in indexes:
        if name not in names:
            conn.execute(f'DROP INDEX "{name}"')
    return [(n, d) for n, d in indexes if n not in names], constraints


def rebuild_ledger_secondary(conn, indexes: list, constraints: list) -> None:  # type: ignore[no-untyped-def]
    """Recreate what drop_ledger_secondary() dropped and move the id sequences past the COPY."""
    for _name, definition in indexes:
        conn.execute(definition)
    for name, table, definition in constraints:
        conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    for table in ("ledger_transactions", "ledger_entries", "ledger_accounts"):
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                     f"(SELECT max(id) FROM {table}))")
    conn.commit()


def finish_seed(database_url: str, timings: dict, started: float) -> dict:
    """VACUUM ANALYZE, then the seed's timings with the entry count and database size."""
    import psycopg

    vacuum_started = time.perf_counter()
    analyze(database_url)
    timings["vacuum_analyze_s"] = time.perf_counter() - vacuum_started
    timings["total_s"] = time.perf_counter() - started
    with psycopg.connect(psycopg_url(database_url)) as conn:
        timings["entries"] = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
        timings["database_size"] = conn.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone()[0]
    return {k: (round(v, 1) if isinstance(v, float) else v) for k, v in timings.items()}


# --- reporting -----------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> str:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pg = "?"
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(PG_ADMIN) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0]
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"PostgreSQL {pg}, wrk {_wrk_version()}")


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    found = re.search(r"wrk ([\d.]+)", out.stdout + out.stderr)
    return found.group(1) if found else "?"


def report(name: str, summary: dict[str, Any], runs: list[WrkResult] | None = None) -> Path:
    """Print the summary and keep it (with every wrk run) in bench/results/<name>-<time>.json."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {
        "benchmark": name,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": {"duration_s": DURATION, "connections": CONNECTIONS, "threads": THREADS,
                     "gunicorn_workers": WORKERS},
        "summary": summary,
        "runs": [asdict(run) for run in runs or []],
    }
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    print()
    print(f"== {name} ==")
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"  {key.ljust(width)}  {shown}")
    print(f"  (saved to {path.relative_to(ROOT)})")
    return path


def profile_worker(server: Server, seconds: int, out: Path) -> Path | None:
    """py-spy a gunicorn worker for a while (run it while wrk is running); returns the file."""
    spy = shutil.which("py-spy") or str(VENV_BIN / "py-spy")
    pids = worker_pids(server)
    if not pids or not Path(spy).exists():
        return None
    subprocess.run([spy, "record", "-p", str(pids[0]), "-d", str(seconds), "-f", "raw",
                    "-o", str(out), "--nonblocking", "--gil"], capture_output=True)
    return out if out.exists() else None


def top_frames(raw_profile: Path, *, limit: int = 25, package: str = "") -> list[tuple[str, float]]:
    """Inclusive share of samples per function from a py-spy raw (collapsed) profile."""
    totals: dict[str, int] = {}
    samples = 0
    for line in raw_profile.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        samples += count
        seen = set()
        for frame in stack.split(";"):
            if package and package not in frame:
                continue
            key = re.sub(r":\d+\)", ")", frame)
            if key not in seen:
                seen.add(key)
                totals[key] = totals.get(key, 0) + count
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:limit]
    return [(frame, count / samples) for frame, count in ranked] if samples else []


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def stringio() -> io.StringIO:
    return io.StringIO()


# --- helpers shared by several benchmarks ---------------------------------------------------


def alternate(
    pairs: list[tuple[str, Any]], rounds: int | None = None
) -> dict[str, list[WrkResult]]:
    """Run each (label, thunk -> WrkResult) in turn, `rounds` times, interleaved.

    Interleaving spreads a busy neighbour on a shared machine over every side instead of
    letting it land on one. Every other round runs in reverse (A B, B A, A B, ...): a
    throughput that drifts as the database grows then weighs on each side alike over two
    rounds (plain A B A B put every A before its B; 2026-12-05 a 19 % drift across four
    runs made a 0.93 pair read 0.87). Compare sides by mean_rps() over all rounds.
    """
    rounds = rounds or int(os.environ.get("BENCH_ROUNDS", "2"))
    results: dict[str, list[WrkResult]] = {label: [] for label, _ in pairs}
    for round_number in range(rounds):
        for label, thunk in (pairs if round_number % 2 == 0 else pairs[::-1]):
            results[label].append(thunk())
    return results


def mean_rps(runs: list[WrkResult]) -> float:
    """Mean throughput over alternate()'s rounds (with its A B / B A order, drift cancels)."""
    return sum(run.rps for run in runs) / len(runs)


def median_run(runs: list[WrkResult]) -> WrkResult:
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def open_accounts(app, resident_ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    """Open the residents' accounts and their communities' issuance accounts up front."""
    from sqlalchemy import select

    from pointsvc.extensions import db
    from pointsvc.ledger.service import district_of, ensure_accounts, issuance_account
    from pointsvc.people.models import Resident

    with app.app_context():
        owners: dict[int, list[tuple[int, int]]] = {}
        districts: dict[int, int] = {}
        for start in range(0, len(resident_ids), 5000):
            for rid, cid in db.session.execute(
                select(Resident.id, Resident.community_id)
                .where(Resident.id.in_(resident_ids[start:start + 5000]))
            ):
                if cid not in districts:
                    districts[cid] = district_of(community_id=cid)
                    issuance_account(community_id=cid)
                owners.setdefault(districts[cid], []).append((rid, cid))
        for district, pairs in owners.items():
            ensure_accounts(kind="resident", owners=pairs, district_id=district)
        db.session.commit()


def contiguous(ids: list[int]) -> tuple[int, int]:
    """(first, last) of a run of ids that wrk scripts draw from; refuses gaps."""
    if ids[-1] - ids[0] + 1 != len(ids):
        raise RuntimeError("resident ids are not contiguous; seed into a fresh database")
    return ids[0], ids[-1]


def count_driver_statements(statements: dict[str, int]) -> Any:
    """Count calls of pointsvc.sql.rows in statements["n"]; returns what to restore.

    The hot paths send their statements through the driver's cursor, which SQLAlchemy's
    `before_cursor_execute` event does not see.
    """
    import pointsvc.sql as lean_sql

    plain_rows = lean_sql.rows

    def counted_rows(*args: Any, **kwargs: Any) -> Any:
        statements["n"] += 1
        return plain_rows(*args, **kwargs)

    lean_sql.rows = counted_rows  # type: ignore[assignment]
    return plain_rows


def restore_driver_statements(plain_rows: Any) -> None:
    import pointsvc.sql as lean_sql

    lean_sql.rows = plain_rows  # type: ignore[assignment]


def in_process(app, method: str, path: str, *, headers: dict[str, str],  # type: ignore[no-untyped-def]
               count: int = 300, json_body: Any = None) -> dict[str, float]:
    """Time requests through the test client (the handler's own time, no HTTP, no queueing)
    and count the SQL statements each one sends."""
    from sqlalchemy import event

    from pointsvc.extensions import db

    client = app.test_client()
    with app.app_context():
        engine = db.engine
    statements = {"n": 0}

    def _count(*_args: Any) -> None:
        statements["n"] += 1

    event.listen(engine, "before_cursor_execute", _count)
    plain_rows = count_driver_statements(statements)
    timings = []
    cpu_started = time.process_time()
    try:
        for n in range(count):
            body = json_body(n) if callable(json_body) else json_body
            extra = {"Idempotency-Key": f"inproc-{time.time_ns()}-{n}"} if body else {}
            started = time.perf_counter()
            response = client.open(path, method=method, headers={**headers, **extra},
                                   json=body)
            timings.append((time.perf_counter() - started) * 1000)
            if response.status_code >= 300:
                raise RuntimeError(f"{method} {path}: {response.status_code} {response.data!r}")
    finally:
        event.remove(engine, "before_cursor_execute", _count)
        restore_driver_statements(plain_rows)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / count
    timings.sort()
    return {
        "p50_ms": round(timings[len(timings) // 2], 2),
        "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 2),
        "mean_ms": round(sum(timings) / len(timings), 2),
        "sql_statements_per_request": round(statements["n"] / count, 1),
        "cpu_ms_per_request": round(cpu_ms, 2),
    }


def http_json(method: str, url: str, *, token: str | None = None, body: Any = None,
              data: bytes | None = None, content_type: str = "application/json",
              headers: dict[str, str] | None = None, timeout: float = 600) -> tuple[int, Any]:
    """One HTTP request with urllib; returns (status, parsed JSON body)."""
    payload = data if data is not None else (
        json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=payload, method=method)
    if payload is not None:
        request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def cprofile_top(func, *, limit: int = 25, contains: str = "pointsvc") -> list[str]:  # type: ignore[no-untyped-def]
    """Run func under cProfile; the top functions by cumulative time (filtered by path)."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        func()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():
        if contains in filename or contains in name:
            rows.append((cumtime, tottime, calls, f"{Path(filename).name}:{line}({name})"))
    rows.sort(reverse=True)
    lines = [f"cum {cum * 1000:8.1f} ms  self {tot * 1000:7.1f} ms  calls {calls:6d}  {where}"
             for cum, tot, calls, where in rows[:limit]]
    lines.append("-- most self time, any code:")
    by_self = sorted(
        ((tot, calls, f"{Path(f).parent.name}/{Path(f).name}:{line}({name})")
         for (f, line, name), (_cc, calls, tot, _cum, _callers) in stats.stats.items()),
        reverse=True)
    lines += [f"self {tot * 1000:8.1f} ms  calls {calls:7d}  {where}"
              for tot, calls, where in by_self[:12]]
    return lines
