"""Every GET page of the wallet, the till and the console, on the demo data, under gunicorn.

Issue #8: each page renders server-side in <= 50 ms p95 on the demo data, and a page's
JavaScript is <= 30 KB uncompressed. A fresh PostgreSQL database gets `flask demo seed`;
the demo resident, merchant operator and admin sign in through the real /login and
/till/login forms (CSRF token, session cookie). The pages are listed from the app's URL
map (the views of pointsvc/web/views, GET only), ids filled with real demo ids; each is
driven by wrk at 1 connection and 1 thread, so a request never waits for another and its
latency is about the server's render time. A bare Flask hello under the same gunicorn
settings is measured at the start and at the end of the same run. JavaScript per page: the
sizes of the <script src> files each page references, fetched from the service.

Downloads (PDF, PNG, SVG, CSV, JSON) are measured too but are not pages: no budget.

`python -m bench.run web_pages`   (BENCH_PAGE_SECONDS: seconds per page, default 3)
"""

from __future__ import annotations

import html
import http.client
import json
import os
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from . import common as c

NAME = "web_pages"
SECONDS = int(os.environ.get("BENCH_PAGE_SECONDS", "3"))
# BENCH_PAGES=/console/residents,/wallet measures only the pages whose rule starts so.
ONLY = tuple(p for p in os.environ.get("BENCH_PAGES", "").split(",") if p)
P95_BUDGET_MS = 50.0
JS_BUDGET_BYTES = 30 * 1024
VIEWS_MODULE = "pointsvc.web.views"

# Who opens a page, by path prefix (first match). Staff: the district admin, who may do
# everything the console offers, over the whole demo district.
AUDIENCES = (("/till/login", "anonymous"), ("/login", "anonymous"), ("/till", "merchant"),
             ("/console", "staff"), ("/wallet", "resident"), ("/M/", "resident"),
             ("/K/", "resident"), ("/account", "resident"), ("/", "resident"))
LOGINS = {"resident": ("/login", "13800000001", "resident-demo-2026"),
          "merchant": ("/till/login", "supermarket", "supermarket-demo-2026"),
          "staff": ("/till/login", "admin", "admin-demo-2026")}
SCRIPT_SRC = re.compile(r"<script\b[^>]*\bsrc=\"([^\"]+)\"", re.I)
PARAM = re.compile(r"<(?:([a-z]+)(?:\(([^)]*)\))?:)?([a-z_]+)>")


# --- HTTP with a cookie, no redirects followed ----------------------------------------------


def _request(port: int, method: str, path: str, *, cookie: str = "",
             form: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes, list[str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Cookie": cookie} if cookie else {}
    body = None
    if form is not None:
        body = urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        cookies = response.headers.get_all("Set-Cookie") or []
        return response.status, dict(response.headers.items()), data, cookies
    finally:
        conn.close()


def _merge_cookies(jar: dict[str, str], set_cookies: list[str]) -> None:
    for line in set_cookies:
        name, _, value = line.split(";", 1)[0].partition("=")
        jar[name.strip()] = value.strip()


def _cookie(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def sign_in(port: int, audience: str) -> str:
    """The Cookie header of a page session opened through the sign-in form."""
    path, identifier, password = LOGINS[audience]
    jar: dict[str, str] = {}
    status, _h, body, cookies = _request(port, "GET", path)
    _merge_cookies(jar, cookies)
    found = re.search(rb'name="csrf_token" value="([^"]+)"', body)
    if status != 200 or not found:
        raise RuntimeError(f"GET {path}: {status}, no CSRF token")
    status, headers, body, cookies = _request(
        port, "POST", path, cookie=_cookie(jar),
        form={"csrf_token": found.group(1).decode(), "identifier": identifier,
              "password": password})
    if status != 302:
        raise RuntimeError(f"POST {path} as {identifier}: {status} {body[:300]!r}")
    _merge_cookies(jar, cookies)
    c.log(f"signed in as {identifier} ({audience}) -> {headers.get('Location')}")
    return _cookie(jar)


# --- the pages -------------------------------------------------------------------------------


def audience_of(path: str) -> str:
    return next(who for prefix, who in AUDIENCES if path == prefix or path.startswith(prefix))


def page_rules(app) -> list[str]:  # type: ignore[no-untyped-def]
    """The GET rules served by the views of pointsvc/web/views, in URL order."""
    rules = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if "GET" in (rule.methods or ()) and view.__module__.startswith(VIEWS_MODULE):
            rules.append(rule.rule)
    return sorted(set(rules))


def expand(rule: str, ids: dict[str, str]) -> tuple[list[tuple[str, str]], str | None]:
    """(label, path) per concrete page of a rule (one per `any(...)` option; ids stay named
    in the label); or why it cannot be filled."""
    pairs = [("", "")]
    position = 0
    for match in PARAM.finditer(rule):
        literal = rule[position:match.start()]
        converter, options, name = match.groups()
        position = match.end()
        if converter == "any":
            values = [(o.strip().strip("'\""),) * 2 for o in (options or "").split(",")]
        else:
            value = (ids.get(f"{rule}:{name}") or ids.get(f"{rule.split('/<', 1)[0]}:{name}")
                     or ids.get(name))
            if value is None:
                return [], f"no demo value for <{name}>"
            values = [(f"<{name}>", value)]
        pairs = [(label + literal + shown, path + literal + value)
                 for label, path in pairs for shown, value in values]
    rest = rule[position:]
    return [(label + rest, path + rest) for label, path in pairs], None


def demo_ids(database_url: str) -> dict[str, str]:
    """Real demo ids for the pages' path parameters (keys: name, or '<rule prefix>:name')."""
    import psycopg

    with psycopg.connect(c.psycopg_url(database_url)) as conn:
        def one(sql: str, *args: object) -> object:
            row = conn.execute(sql, args).fetchone()
            if row is None:
                raise RuntimeError(f"demo data lacks: {sql}")
            return row[0]

        resident = one("SELECT r.id FROM residents r JOIN users u ON u.id = r.user_id "
                       "WHERE u.phone = '13800000001'")
        merchant = one("SELECT mo.merchant_id FROM merchant_operators mo JOIN users u "
                       "ON u.id = mo.user_id WHERE u.username = %s", LOGINS["merchant"][1])
        past = one("SELECT id FROM events WHERE ends_at < now() ORDER BY starts_at LIMIT 1")
        upcoming = one("SELECT id FROM events WHERE starts_at > now() ORDER BY starts_at "
                       "LIMIT 1")
        redemption = one("SELECT r.id FROM redemptions r WHERE r.merchant_id = %s ORDER BY "
                         "(SELECT count(*) FROM redemption_refunds f "
                         "WHERE f.redemption_id = r.id) DESC, r.id LIMIT 1", merchant)
        # The rule the demo's events pay by (its newest version), for the rule pages.
        rule = conn.execute(
            "SELECT id FROM ledger_rules WHERE code = 'volunteer-hour' "
            "ORDER BY version DESC, id DESC LIMIT 1").fetchone()
        deduction = conn.execute(
            "SELECT id FROM ledger_transactions WHERE kind = 'deduction' AND "
            "subject_resident_id = %s ORDER BY id DESC LIMIT 1", (resident,)).fetchone()
    return {"resident_id": str(resident), "merchant_id": str(merchant),
            "event_id": str(past), "/wallet/events:event_id": str(upcoming),
            # A closed event cannot be edited (409): the edit form opens the upcoming one.
            "/console/events/<int:event_id>/edit:event_id": str(upcoming),
            "redemption_id": str(redemption), **({"rule_id": str(rule[0])} if rule else {}),
            "_deduction": str(deduction[0]) if deduction else ""}


def links(app, ids: dict[str, str]) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The /M/ token of the merchant's sticker; an event open now with a kiosk link and the
    /K/ token of its current check-in code (made after the other pages were measured, so
    the demo lists stay as seeded)."""
    from sqlalchemy import select

    from pointsvc.common import utcnow
    from pointsvc.events import service as events
    from pointsvc.extensions import db
    from pointsvc.people.models import Resident, User
    from pointsvc.redemption.service import merchant_code

    with app.app_context():
        sticker = merchant_code(merchant_id=int(ids["merchant_id"]))["link"]
        resident = db.session.get(Resident, int(ids["resident_id"]))
        organizer = db.session.scalar(select(User.id).where(User.username == "organizer"))
        now = utcnow()
        event = events.create_event(
            org_node_id=resident.community_id, actor_user_id=organizer, values={
                "title": "基准：页面测速", "category": "volunteer", "rule_code": "volunteer-hour",
                "starts_at": now - timedelta(minutes=20), "ends_at": now + timedelta(hours=3),
                "place": "春晓社区党群服务中心"})
        events.publish_event(event_id=event.id, actor_user_id=organizer)
        db.session.commit()
        kiosk = events.create_kiosk_link(event_id=event.id, actor_user_id=organizer)
        code = events.checkin_code(event_id=event.id, direction="in")["url"]
    return {"M": urlsplit(sticker).path.rsplit("/", 1)[1],
            "K": urlsplit(code).path.rsplit("/", 1)[1], "kiosk": kiosk["path"]}


def query_for(path: str, ids: dict[str, str], *, shown: bool = False) -> str:
    """A page's usual query: the appeal form is opened from a deduction in the history."""
    if path == "/wallet/appeals/new" and ids.get("_deduction"):
        return "?transaction_id=<id>" if shown else f"?transaction_id={ids['_deduction']}"
    return ""


# --- measuring -------------------------------------------------------------------------------


def latency(label: str, url: str, *, cookie: str, server: c.Server) -> dict:
    """wrk -c1 -t1 for SECONDS; p50/p95/p99 from bench/lua/latency_file.lua."""
    out = Path(f"/tmp/bench-{NAME}-{os.getpid()}.json")
    out.unlink(missing_ok=True)
    os.environ["WRK_LATENCY_FILE"] = str(out)
    try:
        run = c.wrk(label, url, script="latency_file.lua",
                    headers=[f"Cookie: {cookie}"] if cookie else None,
                    duration=SECONDS, connections=1, threads=1, server=server)
        figures = json.loads(out.read_text())
    finally:
        os.environ.pop("WRK_LATENCY_FILE", None)
        out.unlink(missing_ok=True)
    run.extra.update(p95_ms=figures["p95_ms"], p99_exact_ms=figures["p99_ms"],
                     max_ms=figures["max_ms"], mean_ms=figures["mean_ms"])
    return {"run": run, "requests": figures["requests"], "p50_ms": figures["p50_ms"],
            "p95_ms": figures["p95_ms"], "p99_ms": figures["p99_ms"],
            "cpu_ms": run.extra.get("worker_cpu_ms_per_request")}


def javascript(port: int, path: str, cookie: str) -> tuple[int | None, list[str], str]:
    """(bytes of the page's <script src> files, their names, content type) — None if not HTML."""
    status, headers, body, _cookies = _request(port, "GET", path, cookie=cookie)
    kind = headers.get("Content-Type", "").split(";")[0]
    if status >= 400:
        raise RuntimeError(f"GET {path}: {status} {body[:300]!r}")
    if 300 <= status < 400:
        if path != "/":  # a page that sends a signed-in user away was not measured
            raise RuntimeError(f"GET {path}: {status} to {headers.get('Location')}")
        return None, [], "redirect"
    if kind != "text/html":
        return None, [], kind
    total, names = 0, []
    for src in SCRIPT_SRC.findall(body.decode()):
        src = html.unescape(src)
        parts = urlsplit(src)
        if parts.scheme or parts.netloc:
            raise RuntimeError(f"{path}: a script from elsewhere: {src}")
        script_status, _h, script, _c = _request(port, "GET", src)
        if script_status != 200:
            raise RuntimeError(f"{path}: script {src}: {script_status}")
        total += len(script)
        names.append(f"{Path(parts.path).name} {len(script) / 1024:.1f} KB")
    return total, names, kind


def measure(label: str, path: str, *, cookie: str, server: c.Server) -> dict:
    js, scripts, kind = javascript(server.port, path, cookie)
    # Each worker's first render (templates, caches) stays out of the figures; downloads
    # (a PDF takes seconds) get one warm-up.
    for _ in range(2 * c.WORKERS if kind in ("text/html", "redirect") else 1):
        _request(server.port, "GET", path, cookie=cookie)
    row = latency(label, server.url + path, cookie=cookie, server=server)
    return {"page": label, "path": path, "kind": kind, "js_bytes": js, "scripts": scripts,
            **row}


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def is_page(row: dict) -> bool:
    return row["kind"] in ("text/html", "redirect")


def table(rows: list[dict], hello_p50: float) -> str:
    lines = ["| page | as | p50 ms | p95 ms | p99 ms | p50 ÷ hello p50 | CPU ms/req | requests "
             "| JS KB | budget |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        js = "—" if row["js_bytes"] is None else f"{row['js_bytes'] / 1024:.1f}"
        over = []
        if row["p95_ms"] > P95_BUDGET_MS:
            over.append("**p95 OVER**")
        if (row["js_bytes"] or 0) > JS_BUDGET_BYTES:
            over.append("**JS OVER**")
        if not is_page(row):
            verdict = f"download ({row['kind']}), no budget"
        else:
            verdict = ", ".join(over) or "ok"
            if row["kind"] == "redirect":
                verdict += " (redirect)"
        lines.append(
            f"| `{row['page']}` | {row['as']} | {row['p50_ms']:.1f} | {row['p95_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['p50_ms'] / hello_p50:.0f}× | {row['cpu_ms']} | "
            f"{row['requests']} | "
            f"{js} | {verdict} |")
    return "\n".join(lines)


def _figures(runs: list[dict], key: str) -> str:
    return " / ".join(f"{run[key]:.2f}" for run in runs)


def main() -> dict:
    started = time.perf_counter()
    with c.bench_database(NAME) as url:
        subprocess.run([str(c.VENV_BIN / "flask"), "demo", "seed"], cwd=c.ROOT,
                       env={**os.environ, **c.app_env(url)}, check=True,
                       stdout=subprocess.DEVNULL)
        c.analyze(url)
        c.log("demo district seeded")
        app = c.make_app(url)
        ids = demo_ids(url)
        load_before = _load()
        rows: list[dict] = []
        skipped: list[str] = []
        with c.gunicorn("hello", "bench.baselines.hello:app", env={}) as hello, \
                c.gunicorn("pointsvc", "wsgi:app", env=c.app_env(url)) as server:
            hello_runs = [latency("hello (start)", hello.url + "/hello", cookie="",
                                  server=hello)]
            cookies = {who: sign_in(server.port, who) for who in LOGINS}
            cookies["anonymous"] = ""
            late = []  # /K/ and /M/ need the links made by links()
            for rule in page_rules(app):
                if ONLY and not rule.startswith(ONLY):
                    continue
                if rule.startswith(("/K/", "/M/")):
                    late.append(rule)
                    continue
                pages, why = expand(rule, ids)
                if why:
                    skipped.append(f"{rule}: {why}")
                for label, path in pages:
                    who = audience_of(path)
                    row = measure(label + query_for(path, ids, shown=True),
                                  path + query_for(path, ids), cookie=cookies[who],
                                  server=server)
                    rows.append({**row, "as": who})
            extra = links(app, ids)
            for rule in late:
                path = rule.replace("<token>", extra[rule[1]])
                if rule.startswith("/K/"):
                    # The first opening records the check-in (201); wrk then measures
                    # re-openings of the same code step ("already checked in", 200).
                    _request(server.port, "GET", path, cookie=cookies["resident"])
                rows.append({**measure(rule, path, cookie=cookies["resident"], server=server),
                             "as": "resident"})
            # Not a view of pointsvc/web/views but a page staff open from the console.
            rows.append({**measure("/events/<event_id>/kiosk?k=", extra["kiosk"], cookie="",
                                   server=server), "as": "kiosk link"})
            hello_runs.append(latency("hello (end)", hello.url + "/hello", cookie="",
                                      server=hello))
        load_after = _load()
    pages = [r for r in rows if is_page(r)]
    hello_p50 = sum(h["p50_ms"] for h in hello_runs) / len(hello_runs)
    hello_p95 = sum(h["p95_ms"] for h in hello_runs) / len(hello_runs)
    worst = max(pages, key=lambda r: r["p95_ms"])
    js_worst = max(pages, key=lambda r: r["js_bytes"] or 0)
    over_p95 = [r["page"] for r in pages if r["p95_ms"] > P95_BUDGET_MS]
    over_js = [r["page"] for r in pages if (r["js_bytes"] or 0) > JS_BUDGET_BYTES]
    summary = {
        "pages": len(pages), "downloads": len(rows) - len(pages),
        "seconds_per_page": SECONDS, "connections": 1, "threads": 1,
        "gunicorn_workers": c.WORKERS,
        "hello_p50_ms (start / end)": _figures(hello_runs, "p50_ms"),
        "hello_p95_ms (start / end)": _figures(hello_runs, "p95_ms"),
        "hello_p99_ms (start / end)": _figures(hello_runs, "p99_ms"),
        "worst_page_p95": f"{worst['page']} {worst['p95_ms']:.1f} ms",
        "worst_page_p95_over_hello_p95": round(worst["p95_ms"] / hello_p95, 1),
        "median_page_p95_ms": sorted(r["p95_ms"] for r in pages)[len(pages) // 2],
        "max_js_per_page": f"{js_worst['page']} {(js_worst['js_bytes'] or 0) / 1024:.1f} KB",
        "pages_over_p95_budget": ", ".join(over_p95) or "none",
        "pages_over_js_budget": ", ".join(over_js) or "none",
        "target": f"p95 <= {P95_BUDGET_MS:.0f} ms per page, JS <= 30 KB per page",
        "met": not over_p95 and not over_js,
        "skipped": "; ".join(skipped) or "none",
        "load_average_before": load_before, "load_average_after": load_after,
        "minutes": round((time.perf_counter() - started) / 60, 1),
    }
    saved = c.report(NAME, summary, [r["run"] for r in rows] + [h["run"] for h in hello_runs])
    document = json.loads(saved.read_text())
    document["pages"] = [{k: v for k, v in r.items() if k != "run"} for r in rows]
    saved.write_text(json.dumps(document, indent=2, ensure_ascii=False))
    print()
    print(f"wrk -c1 -t1 -d{SECONDS}s per page; gunicorn -w {c.WORKERS}; load average "
          f"{load_before} (before), {load_after} (after)")
    print(f"hello (bare Flask, same gunicorn settings), start / end: p50 "
          f"{_figures(hello_runs, 'p50_ms')} ms, p95 {_figures(hello_runs, 'p95_ms')} ms, "
          f"p99 {_figures(hello_runs, 'p99_ms')} ms")
    print()
    print(table(rows, hello_p50))
    print()
    if over_p95 or over_js:
        print(f"OVER BUDGET: p95 > {P95_BUDGET_MS:.0f} ms: {', '.join(over_p95) or 'none'}; "
              f"JS > 30 KB: {', '.join(over_js) or 'none'}")
    else:
        print(f"every page within budget: worst p95 {summary['worst_page_p95']}, "
              f"most JavaScript {summary['max_js_per_page']}")
    return summary


if __name__ == "__main__":
    main()
