"""Reading a bulk-award CSV from the console: one award per row, every bad row named.

Columns: resident_id, rule_code, quantity and optionally memo (a header row first). UTF-8
(with or without BOM) or GBK, as spreadsheet programs in China write it. Bounds are the
API's (BulkItemIn), so the page accepts exactly what POST /api/v1/awards/bulk accepts.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from ..ledger.schemas import MAX_QUANTITY

MAX_ROWS = 10_000  # as BulkAwardIn
COLUMNS = ("resident_id", "rule_code", "quantity")
MAX_ID = 2**62


@dataclass
class Parsed:
    items: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the file line of each item
    errors: dict[int, str] = field(default_factory=dict)  # file line -> message
    problem: str | None = None  # the whole file is unusable


def _decode(data: bytes) -> str | None:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _number(text: str, maximum: int) -> int | None:
    text = text.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= maximum else None


def parse(data: bytes) -> Parsed:
    result = Parsed()
    text = _decode(data)
    if text is None:
        result.problem = _("The file is neither UTF-8 nor GBK text.")
        return result
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [cell.strip().lower() for cell in rows[0][:3]] != list(COLUMNS):
        result.problem = _("The first row must be: resident_id,rule_code,quantity[,memo]")
        return result
    if len(rows) - 1 > MAX_ROWS:
        result.problem = _("At most %(n)d rows.", n=MAX_ROWS)
        return result
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        _row(result, line, row)
    if not result.items and not result.errors:
        result.problem = _("The file has no rows.")
    return result


def _row(result: Parsed, line: int, row: list[str]) -> None:
    cells = [cell.strip() for cell in row] + [""] * 4
    resident_id = _number(cells[0], MAX_ID)
    quantity = _number(cells[2], MAX_QUANTITY)
    if resident_id is None:
        result.errors[line] = _("resident_id must be a resident's number.")
    elif not cells[1] or len(cells[1]) > 64:
        result.errors[line] = _("rule_code is missing.")
    elif quantity is None:
        result.errors[line] = _("quantity must be a whole number from 1 to %(n)d.",
                                n=MAX_QUANTITY)
    elif len(cells[3]) > 500:
        result.errors[line] = _("memo: at most %(n)d characters.", n=500)
    else:
        item: dict[str, Any] = {"resident_id": resident_id, "rule_code": cells[1],
                                "quantity": quantity}
        if cells[3]:
            item["memo"] = cells[3]
        result.items.append(item)
        result.lines.append(line)


def row_message(message: str) -> str:
    """The bulk validator's "code: detail" for one row, in the page's language."""
    from flask_babel import lazy_gettext as _l

    messages = {
        "not_found": _l("No such resident."),
        "not_in_scope": _l("This resident is outside your area."),
        "self_dealing": _l("You may not award yourself or your household."),
        "rule_not_found": _l("No active rule with this code in the resident's community."),
        "validation_failed": _l("Bulk awards only add points; post deductions one at a time."),
        "approval_required": _l("Needs approval: submit it as a single award."),
        "cap_exceeded": _l("The rule's cap leaves no room for this."),
    }
    code = message.split(":", 1)[0]
    return str(messages.get(code, message))
