"""The ledger: double-entry points, rules, awards, reversals and the transparency log."""
