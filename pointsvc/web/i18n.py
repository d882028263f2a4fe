"""Language and time zone of a page: Chinese unless the visitor chose English; times in the
community's zone (the resident's community, the node a merchant serves)."""

from __future__ import annotations

from flask import g, session

from . import DEFAULT_LANGUAGE, LANGUAGES

DEFAULT_TIMEZONE = "Asia/Shanghai"


def select_locale() -> str:
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def html_lang() -> str:
    """The BCP 47 tag for <html lang>: zh-CN or en."""
    return select_locale().replace("_", "-")


def is_english() -> bool:
    return select_locale() == "en"


def select_timezone() -> str:
    """The zone of the signed-in person's community or merchant node (cached in g)."""
    if "page_timezone" in g:
        return g.page_timezone
    zone = DEFAULT_TIMEZONE
    principal = g.get("principal")
    node_id = None
    if principal is not None:
        node_id = principal.community_id or _merchant_node(principal.merchant_id)
    if node_id:
        from ..orgs.service import node_facts

        facts = node_facts(node_id=node_id)
        if facts is not None and facts.timezone:
            zone = facts.timezone
    g.page_timezone = zone
    return zone


def _merchant_node(merchant_id: int | None) -> int | None:
    if merchant_id is None:
        return None
    from ..merchants.service import get_merchant

    return get_merchant(merchant_id=merchant_id).merchant.org_node_id
