"""Append-only tables, `flask ledger check`, `flask ledger verify` and the transparency log."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from pointsvc.extensions import db
from pointsvc.ledger import merkle
from pointsvc.ledger.checks import check_invariants, verify_ledger
from pointsvc.ledger.seals import seal, seal_message
from tests.factories import auth
from tests.ledger.conftest import award


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = amount + 1",
        "DELETE FROM ledger_entries",
        "UPDATE ledger_transactions SET kind = 'adjustment'",
        "DELETE FROM ledger_transactions",
        "UPDATE audit_events SET action = 'x'",
    ],
)
def test_append_only_tables_refuse_update_and_delete(app, client, world, statement):
    award(client, app, world.organizer, world.resident, "garbage-sorting")
    with app.app_context():
        with pytest.raises(DatabaseError, match="append-only"):
            db.session.execute(text(statement))
        db.session.rollback()
        assert check_invariants() == []


def _tamper(app, backend, sql, table="ledger_entries"):
    """Alter a row behind the triggers' back, as an attacker with database access could."""
    with app.app_context():
        if backend == "postgresql":
            db.session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            db.session.execute(text(sql))
            db.session.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
        else:
            db.session.execute(text(f"DROP TRIGGER {table}_no_update"))
            db.session.execute(text(sql))
            db.session.execute(text(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'append-only table {table}: UPDATE refused'); "
                "END"))
        db.session.commit()


def _restore(app, backend, sql, table="ledger_entries"):
    _tamper(app, backend, sql, table)


def test_verify_names_the_altered_transaction(app, client, world, backend):
    first = award(client, app, world.organizer, world.resident, "garbage-sorting").get_json()
    second = award(client, app, world.organizer, world.resident2, "garbage-sorting").get_json()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    _tamper(app, backend, f"UPDATE ledger_entries SET amount = amount * 2 "
                          f"WHERE transaction_id = {second['id']}")
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1
    assert f"transaction {second['id']}: content hash does not recompute" in result.output
    assert f"transaction {first['id']}" not in result.output
    check = runner.invoke(args=["ledger", "check"])
    assert check.exit_code == 1
    assert "bounded balance differs from its entries" in check.output
    _restore(app, backend, f"UPDATE ledger_entries SET amount = amount / 2 "
                           f"WHERE transaction_id = {second['id']}")
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0


def test_stored_amount_is_the_positive_entries_and_check_holds_it(app, client, world,
                                                                    backend):
    posted = award(client, app, world.organizer, world.resident, "garbage-sorting", 2).get_json()
    with app.app_context():
        stored = db.session.execute(text(
            f"SELECT amount FROM ledger_transactions WHERE id = {posted['id']}")).scalar_one()
        moved = db.session.execute(text(
            "SELECT SUM(amount) FROM ledger_entries WHERE amount > 0 "
            f"AND transaction_id = {posted['id']}")).scalar_one()
        db.session.rollback()
    assert stored == moved == 10
    _tamper(app, backend, f"UPDATE ledger_transactions SET amount = 99 WHERE id = {posted['id']}",
            table="ledger_transactions")
    runner = app.test_cli_runner()
    check = runner.invoke(args=["ledger", "check"])
    assert check.exit_code == 1
    assert f"transaction amount differs from its positive entries: ({posted['id']}, 99)" \
        in check.output
    # Not hashed (derived from the hashed entries): verify still recomputes every hash.
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0
    _restore(app, backend, f"UPDATE ledger_transactions SET amount = 10 WHERE id = {posted['id']}",
             "ledger_transactions")
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0


def test_seals_chain_sign_and_prove_inclusion(app, client, world):
    txs = [award(client, app, world.organizer, world.resident2, "volunteer-hour", 60
                 ).get_json()["id"] for _ in range(3)]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "seal"])
    assert result.exit_code == 0 and "seal 1: tree size 3" in result.output
    txs += [award(client, app, world.organizer, world.resident2, "volunteer-hour", 60
                  ).get_json()["id"] for _ in range(4)]
    with app.app_context():
        second = seal()
        assert second.seq == 2 and second.tree_size == 7
        assert seal() is None  # nothing left to seal

    seals = client.get("/api/v1/ledger/seals").get_json()["items"]
    assert [s["seq"] for s in seals] == [2, 1]
    assert seals[0]["previous_root_hash"] == seals[1]["root_hash"]
    keys = client.get("/api/v1/keys").get_json()["keys"]
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(keys[0]["public_key"]))
    from datetime import UTC, datetime, timedelta

    for s in seals:
        sealed_at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=s["sealed_at_micros"])
        public.verify(base64.b64decode(s["signature"]), seal_message(
            seq=s["seq"], tree_size=s["tree_size"], root_hash=s["root_hash"],
            previous_root_hash=s["previous_root_hash"], sealed_at=sealed_at))

    # The resident asks for an inclusion proof of their transaction and checks it alone.
    for tx_id in (txs[0], txs[5]):
        proof = client.get(f"/api/v1/transactions/{tx_id}/proof",
                           headers=auth(app, world.resident2_user))
        assert proof.status_code == 200, proof.get_json()
        p = proof.get_json()
        tx = client.get(f"/api/v1/transactions/{tx_id}",
                        headers=auth(app, world.resident2_user)).get_json()
        assert p["content_hash"] == tx["content_hash"]
        leaf = merkle.leaf_hash(bytes.fromhex(p["content_hash"]))
        assert merkle.verify_inclusion(
            index=p["leaf_index"], tree_size=p["tree_size"], leaf=leaf,
            proof=[bytes.fromhex(h) for h in p["audit_path"]],
            expected_root=bytes.fromhex(p["seal"]["root_hash"]))
    # Someone else's resident may not fetch the proof.
    assert client.get(f"/api/v1/transactions/{txs[0]}/proof",
                      headers=auth(app, world.resident_user)).status_code == 403

    c = client.get("/api/v1/ledger/consistency?from=1&to=2").get_json()
    assert merkle.verify_consistency(
        old_size=c["old"]["tree_size"], new_size=c["new"]["tree_size"],
        old_root=bytes.fromhex(c["old"]["root_hash"]),
        new_root=bytes.fromhex(c["new"]["root_hash"]),
        proof=[bytes.fromhex(h) for h in c["proof"]])
    with app.app_context():
        assert verify_ledger() == []


def test_unsealed_transaction_has_no_proof_yet(app, client, world):
    tx = award(client, app, world.organizer, world.resident, "garbage-sorting").get_json()
    r = client.get(f"/api/v1/transactions/{tx['id']}/proof", headers=auth(app, world.auditor))
    assert r.status_code == 409 and r.get_json()["code"] == "not_sealed"
    assert client.get("/api/v1/ledger/seals/99").status_code == 404
    assert client.get("/api/v1/ledger/consistency?from=1").status_code == 422


def test_forged_seal_is_detected(app, client, world, backend):
    award(client, app, world.organizer, world.resident, "garbage-sorting")
    with app.app_context():
        seal()
        if backend == "postgresql":
            db.session.execute(text("ALTER TABLE ledger_seals DISABLE TRIGGER USER"))
            db.session.execute(text("UPDATE ledger_seals SET root_hash = :r"), {"r": "ab" * 32})
            db.session.execute(text("ALTER TABLE ledger_seals ENABLE TRIGGER USER"))
        else:
            db.session.execute(text("DROP TRIGGER ledger_seals_no_update"))
            db.session.execute(text("UPDATE ledger_seals SET root_hash = :r"), {"r": "ab" * 32})
        db.session.commit()
        problems = verify_ledger()
        assert problems and problems[0].startswith("seal 1:")
        # Remove the forged seal so the after-test invariant check passes.
        db.session.rollback()
        _drop_seals(backend)


def _alter_leaves(backend, statement, params=None):
    table = "ledger_seal_leaves"
    if backend == "postgresql":
        db.session.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        db.session.execute(text(statement), params or {})
        db.session.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    else:
        db.session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
        db.session.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
        db.session.execute(text(statement), params or {})
    db.session.commit()


@pytest.mark.parametrize("independent", [False, True])  # the database's check, Python's
def test_a_forged_or_missing_leaf_is_named(app, client, world, backend, independent):
    award(client, app, world.organizer, world.resident, "garbage-sorting")
    second = award(client, app, world.organizer, world.resident2, "garbage-sorting").get_json()
    with app.app_context():
        seal()
        assert verify_ledger(independent=independent) == []
        _alter_leaves(backend, "UPDATE ledger_seal_leaves SET leaf_hash = :h "
                               "WHERE leaf_index = 1", {"h": b"\x01" * 32})
        assert verify_ledger(independent=independent) == [
            f"seal 1: leaf 1 (transaction {second['id']}) does not match"]
        _alter_leaves(backend, "DELETE FROM ledger_seal_leaves WHERE leaf_index = 0")
        assert verify_ledger(independent=independent) == ["seal 1: leaf 1 out of order"]
        _drop_seals(backend)


def _drop_seals(backend):
    if backend == "postgresql":
        db.session.execute(text("ALTER TABLE ledger_seals DISABLE TRIGGER USER"))
        db.session.execute(text("ALTER TABLE ledger_seal_leaves DISABLE TRIGGER USER"))
    else:
        db.session.execute(text("DROP TRIGGER IF EXISTS ledger_seal_leaves_no_delete"))
        db.session.execute(text("DROP TRIGGER IF EXISTS ledger_seals_no_delete"))
    db.session.execute(text("DELETE FROM ledger_seal_leaves"))
    db.session.execute(text("DELETE FROM ledger_seals"))
    if backend == "postgresql":
        db.session.execute(text("ALTER TABLE ledger_seals ENABLE TRIGGER USER"))
        db.session.execute(text("ALTER TABLE ledger_seal_leaves ENABLE TRIGGER USER"))
    db.session.commit()


def test_outsider_script_checks_a_proof(app, client, world, tmp_path):
    import json
    import subprocess
    import sys

    tx = award(client, app, world.organizer, world.resident, "garbage-sorting").get_json()
    award(client, app, world.organizer, world.resident2, "garbage-sorting")
    with app.app_context():
        seal()
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(client.get("/api/v1/keys").get_json()))
    proof_body = client.get(f"/api/v1/transactions/{tx['id']}/proof",
                            headers=auth(app, world.auditor)).get_json()
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(proof_body))
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "tools" / "verify_proof.py"
    script = [str(tool), str(keys), str(proof)]
    ok = subprocess.run([sys.executable, *script], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("OK:"), ok.stdout + ok.stderr
    original = proof_body["content_hash"]
    # Change the first digit for sure ("00" + ... did nothing for a hash starting 00).
    proof_body["content_hash"] = ("1" if original[0] != "1" else "2") + original[1:]
    proof.write_text(json.dumps(proof_body))
    bad = subprocess.run([sys.executable, *script], capture_output=True, text=True)
    assert bad.returncode == 1 and "FAIL" in bad.stdout


def test_database_recomputation_agrees_with_python(app, client, world, backend):
    """Every kind of row verifies both ways; a non-ASCII field falls back to Python."""
    from pointsvc.ledger.checks import _mismatches_in_database
    from pointsvc.ledger.reading import find_account
    from pointsvc.ledger.service import Leg, Transfer, district_of, issuance_account, post

    earned = award(client, app, world.organizer, world.resident, "garbage-sorting", 3,
                   memo="分类投放 \"quoted\" \\ back\nslash").get_json()
    reversal = client.post(f"/api/v1/transactions/{earned['id']}/reversal",
                           json={"reason": "录入错误"},
                           headers=auth(app, world.organizer2, **{"Idempotency-Key": "rv-1"}))
    assert reversal.status_code == 201, reversal.get_json()
    award(client, app, world.organizer, world.resident, "litter")  # deduction, shortfall
    award(client, app, world.organizer, world.resident2, "volunteer-hour", 90)
    with app.app_context():
        community = world.tree.community_a
        issuance = issuance_account(community_id=community)
        resident = find_account(kind="resident", owner_id=world.resident2).id
        odd = post(transfer=Transfer(
            kind="adjustment", community_id=community,
            district_id=district_of(community_id=community),
            legs=(Leg(issuance, -1), Leg(resident, 1)), reference_type="import",
            reference_id="旧账本-7\t\"x\"", actor_user_id=world.organizer))
        db.session.commit()
        odd_id = odd.id
        if backend == "postgresql":
            assert _mismatches_in_database() == [odd_id]  # non-ASCII: left to Python
        assert verify_ledger() == []
        assert verify_ledger(independent=True) == []
    _tamper(app, backend, f"UPDATE ledger_transactions SET rule_code = 'x' "
                          f"WHERE id = {earned['id']}", table="ledger_transactions")
    runner = app.test_cli_runner()
    for args in (["ledger", "verify"], ["ledger", "verify", "--independent"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1
        assert f"transaction {earned['id']}: content hash does not recompute" in result.output
    _tamper(app, backend, f"UPDATE ledger_transactions SET rule_code = 'garbage-sorting' "
                          f"WHERE id = {earned['id']}", table="ledger_transactions")
    assert runner.invoke(args=["ledger", "verify"]).exit_code == 0


def test_what_post_returns_is_the_stored_row(app, client, world):
    """post() answers with a PostedTransaction, not an ORM entity: it must carry every hashed
    column, and equal the row it wrote."""
    from dataclasses import fields

    from pointsvc.ledger.hashing import HEADER_FIELDS, content_hash
    from pointsvc.ledger.models import LedgerTransaction
    from pointsvc.ledger.service import PostedTransaction

    names = [field.name for field in fields(PostedTransaction)]
    assert names == [*HEADER_FIELDS, "amount", "content_hash", "posted_entries"]
    r = award(client, app, world.organizer, world.resident, "garbage-sorting", 2)
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    with app.app_context():
        stored = db.session.get(LedgerTransaction, body["id"])
        header = {name: getattr(stored, name) for name in HEADER_FIELDS}
        entries = [(e["account_id"], e["amount"], e["balance_after"]) for e in body["entries"]]
        assert body["content_hash"] == stored.content_hash == content_hash(header=header,
                                                                            entries=entries)
        assert body["points"] == stored.amount == 10
