"""Run one benchmark by name: `python -m bench.run <name>` (`--list` names them)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("me_vs_hello", "import_10k", "awards", "hot_issuance", "bulk_10k", "audit",
              "big_ledger", "verify_rate", "redemption", "events_checkin", "events_render",
              "events_close", "leaderboards", "web_pages")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in (*BENCHMARKS, "--list"):
        print(f"usage: python -m bench.run <{'|'.join(BENCHMARKS)}>", file=sys.stderr)
        return 2
    if argv[0] == "--list":
        print("\n".join(BENCHMARKS))
        return 0
    importlib.import_module(f"bench.{argv[0]}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
