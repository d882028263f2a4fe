"""Read and check a resident CSV file; people.service.import_residents writes the result.

Everything here only reads: decoding, header and row checks, and a handful of set-based
look-ups (communities, grids, phones), so a 20,000-row file costs a few dozen queries.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from sqlalchemy import select

from ..errors import DomainError
from ..extensions import db
from ..orgs.models import OrgNode
from .models import Resident, User
from .schemas import MAX_ID, PHONE_PATTERN, check_text

COLUMNS = ("name", "phone", "community_id", "grid_id", "household", "is_minor")
ENCODINGS = ("utf-8-sig", "gbk")
TRUE_WORDS = {"1", "true", "t", "yes", "y", "是"}
FALSE_WORDS = {"", "0", "false", "f", "no", "n", "否"}
MAX_REPORTED_ERRORS = 1000
LOOKUP_CHUNK = 900  # below SQLite's historical 999 bound parameters per statement

_phone = re.compile(PHONE_PATTERN)


@dataclass
class RowError:
    row: int
    line: int
    field: str | None
    message: str

    def as_dict(self) -> dict[str, object]:
        return {"row": self.row, "line": self.line, "field": self.field, "message": self.message}


@dataclass
class ImportRow:
    row: int
    line: int
    name: str
    phone: str
    community_id: int
    grid_id: int | None
    household: str | None
    is_minor: bool


@dataclass
class ImportPlan:
    rows: int = 0
    new_rows: list[ImportRow] = field(default_factory=list)
    unchanged: int = 0
    failed: int = 0
    errors: list[RowError] = field(default_factory=list)

    def household_keys(self) -> set[tuple[int, str]]:
        return {(r.community_id, r.household) for r in self.new_rows if r.household}


def decode(data: bytes) -> str:
    """UTF-8 (with or without BOM), else GBK (what Excel on Chinese Windows writes)."""
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise DomainError(
        "undecodable_file",
        "the file is neither UTF-8 nor GBK text; save it as CSV UTF-8",
        status=422,
    )


def _records(text: str) -> tuple[list[str], list[tuple[int, list[str]]], int]:
    """Header, the non-blank records with the line each starts on, and the record count."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    count = 0
    last_line = 0
    try:
        for record in reader:
            start, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in record):
                continue
            if header is None:
                header = record
                continue
            count += 1
            records.append((start, record))
    except csv.Error as exc:
        raise DomainError(
            "malformed_csv", f"line {reader.line_num}: {exc}", status=422, line=reader.line_num
        ) from exc
    if header is None:
        raise DomainError(
            "invalid_csv_header", "the file is empty", status=422, missing=list(COLUMNS[:2])
        )
    return header, records, count


def _check_header(header: list[str], *, community_required: bool) -> list[str]:
    names = [cell.strip().lower() for cell in header]
    required = ["name", "phone"] + (["community_id"] if community_required else [])
    missing = [column for column in required if column not in names]
    unknown = [column for column in names if column not in COLUMNS]
    duplicate = sorted({column for column in names if names.count(column) > 1})
    if missing or unknown or duplicate:
        parts = []
        if missing:
            parts.append("missing: " + ", ".join(missing))
        if unknown:
            parts.append("unknown: " + ", ".join(repr(c) for c in unknown))
        if duplicate:
            parts.append("repeated: " + ", ".join(duplicate))
        raise DomainError(
            "invalid_csv_header",
            "; ".join(parts) + f" (expected columns: {', '.join(COLUMNS)})",
            status=422,
            missing=missing,
            unknown=unknown,
            duplicate=duplicate,
            expected=list(COLUMNS),
        )
    return names


def _parse_id(raw: str) -> int | None:
    text = raw.strip()
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


def _parse_row(
    row: int, line: int, cells: dict[str, str], default_community_id: int | None
) -> ImportRow | list[RowError]:
    errors: list[RowError] = []

    def fail(column: str | None, message: str) -> None:
        errors.append(RowError(row, line, column, message))

    name = cells.get("name", "").strip()
    if problem := check_text(name, max_length=100):
        fail("name", problem)
    phone = cells.get("phone", "").strip()
    if not _phone.match(phone):
        fail("phone", "Not a valid mainland mobile number.")
    raw_community = cells.get("community_id", "").strip()
    community_id = _parse_id(raw_community) if raw_community else default_community_id
    if community_id is None:
        fail(
            "community_id",
            f"Not a valid id: {raw_community!r}." if raw_community else "Missing (no default).",
        )
    raw_grid = cells.get("grid_id", "").strip()
    grid_id = _parse_id(raw_grid) if raw_grid else None
    if raw_grid and grid_id is None:
        fail("grid_id", f"Not a valid id: {raw_grid!r}.")
    household = cells.get("household", "").strip() or None
    if household is not None and (problem := check_text(household, max_length=200)):
        fail("household", problem)
    minor_word = cells.get("is_minor", "").strip().lower()
    if minor_word not in TRUE_WORDS | FALSE_WORDS:
        fail("is_minor", f"Expected 1/0, true/false, yes/no or 是/否, got {minor_word!r}.")
    if errors:
        return errors
    assert community_id is not None
    return ImportRow(
        row, line, name, phone, community_id, grid_id, household, minor_word in TRUE_WORDS
    )


def _chunks(values: list, size: int = LOOKUP_CHUNK):  # type: ignore[no-untyped-def]
    for start in range(0, len(values), size):
        yield values[start : start + size]


def plan_import(
    *,
    data: bytes,
    default_community_id: int | None,
    scope_paths: list[str] | None,
    max_rows: int,
) -> ImportPlan:
    """Decode, check and classify every row: new, unchanged or failed (with its line)."""
    header, records, count = _records(decode(data))
    columns = _check_header(header, community_required=default_community_id is None)
    if count > max_rows:
        raise DomainError(
            "too_many_rows",
            f"the file has {count} data rows; at most {max_rows} can be imported at once",
            status=413,
            rows=count,
            max_rows=max_rows,
        )
    plan = ImportPlan(rows=count)
    parsed: list[ImportRow] = []
    first_line_of_phone: dict[str, int] = {}
    for row, (line, record) in enumerate(records, start=1):
        if len(record) != len(columns):
            plan.errors.append(
                RowError(row, line, None, f"Expected {len(columns)} fields, got {len(record)}.")
            )
            continue
        cells = dict(zip(columns, record, strict=True))
        result = _parse_row(row, line, cells, default_community_id)
        if isinstance(result, list):
            plan.errors.extend(result)
            continue
        if result.phone in first_line_of_phone:
            plan.errors.append(
                RowError(
                    row, line, "phone", f"Same phone as line {first_line_of_phone[result.phone]}."
                )
            )
            continue
        first_line_of_phone[result.phone] = line
        parsed.append(result)

    communities = _nodes({r.community_id for r in parsed})
    grids = _nodes({r.grid_id for r in parsed if r.grid_id is not None})
    existing = _existing_phones([r.phone for r in parsed])
    for item in parsed:
        error = _check_references(item, communities, grids, existing, scope_paths)
        if error is not None:
            plan.errors.append(error)
        elif item.phone in existing:
            plan.unchanged += 1
        else:
            plan.new_rows.append(item)
    plan.errors.sort(key=lambda e: (e.row, e.field or ""))
    plan.failed = len({e.row for e in plan.errors})
    del plan.errors[MAX_REPORTED_ERRORS:]
    return plan


def _check_references(
    item: ImportRow,
    communities: dict[int, tuple[str, int | None, str]],
    grids: dict[int, tuple[str, int | None, str]],
    existing: dict[str, tuple[str, int | None]],
    scope_paths: list[str] | None,
) -> RowError | None:
    def error(column: str, message: str) -> RowError:
        return RowError(item.row, item.line, column, message)

    community = communities.get(item.community_id)
    if community is None or community[0] != "community":
        return error("community_id", f"No community with id {item.community_id}.")
    if scope_paths is not None and not any(community[2].startswith(p) for p in scope_paths):
        return error("community_id", "Community outside your area (not_in_scope).")
    if item.grid_id is not None:
        grid = grids.get(item.grid_id)
        if grid is None or grid[0] != "grid" or grid[1] != item.community_id:
            return error("grid_id", f"No grid {item.grid_id} in community {item.community_id}.")
    if item.phone in existing:
        name, community_id = existing[item.phone]
        if community_id is None:
            return error("phone", "Already registered to an account that is not a resident.")
        if community_id != item.community_id:
            return error("phone", "Already registered to a resident of another community.")
        if name != item.name:
            return error("phone", "Already registered to a resident with a different name.")
    return None


def _nodes(ids: set[int]) -> dict[int, tuple[str, int | None, str]]:
    found: dict[int, tuple[str, int | None, str]] = {}
    for chunk in _chunks(sorted(ids)):
        for node_id, level, parent_id, path in db.session.execute(
            select(OrgNode.id, OrgNode.level, OrgNode.parent_id, OrgNode.path).where(
                OrgNode.id.in_(chunk)
            )
        ):
            found[node_id] = (level, parent_id, path)
    return found


def _existing_phones(phones: list[str]) -> dict[str, tuple[str, int | None]]:
    """phone -> (name, community of the resident or None) for phones already registered."""
    found: dict[str, tuple[str, int | None]] = {}
    for chunk in _chunks(phones):
        for phone, name, community_id in db.session.execute(
            select(User.phone, User.display_name, Resident.community_id)
            .outerjoin(Resident, Resident.user_id == User.id)
            .where(User.phone.in_(chunk))
        ):
            found[phone] = (name, community_id)
    return found
