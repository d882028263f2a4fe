"""The message catalogs: every visible string of the pages is translated into Chinese, the
compiled .mo matches its .po, and placeholders survive translation."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

WEB = Path(__file__).resolve().parents[2] / "pointsvc" / "web"
CATALOG = WEB / "translations" / "zh_Hans_CN" / "LC_MESSAGES"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "_l": None, "lazy_gettext": None}


def _source_strings() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), METHODS, keywords=KEYWORDS):
        found.add(message if isinstance(message, str) else message[0])
    return found


def _po():  # type: ignore[no-untyped-def]
    with open(CATALOG / "messages.po", "rb") as handle:
        return read_po(handle)


def test_every_page_string_has_a_chinese_translation():
    catalog = _po()
    translated = {m.id: m.string for m in catalog if m.id}
    strings = _source_strings()
    assert len(strings) > 100
    missing = sorted(s for s in strings if not translated.get(s))
    assert missing == [], "run the catalog update in docs/web.md and translate these"


def test_the_compiled_catalog_matches_its_source():
    with open(CATALOG / "messages.mo", "rb") as handle:
        compiled = {m.id: m.string for m in read_mo(handle) if m.id}
    source = {m.id: m.string for m in _po() if m.id}
    assert compiled == source, "compile the catalog: see docs/web.md"


def test_placeholders_survive_translation():
    problems = [(message.id, errors) for message, errors in _po().check()]
    assert problems == []
