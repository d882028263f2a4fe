"""One error shape for the whole service: RFC 9457 application/problem+json.

Services raise DomainError (or a subclass); werkzeug HTTP errors and webargs validation
errors are mapped here too, so every failure leaves the service in the same shape, with a
stable machine `code`, a title in Chinese (default) or English, and the request id.
"""

from __future__ import annotations

import logging
from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, g, json, request
from werkzeug.exceptions import HTTPException

from .observability import current_request_id

log = logging.getLogger("pointsvc.errors")

PROBLEM_MIMETYPE = "application/problem+json"

# code -> (zh-CN title, English title). Codes are part of the API: never rename one.
TITLES: dict[str, tuple[str, str]] = {
    "malformed_json": ("请求体不是有效的 JSON", "The request body is not valid JSON"),
    "bad_request": ("请求无效", "Bad request"),
    "unauthorized": ("需要登录", "Authentication required"),
    "invalid_token": ("令牌无效或已过期", "The token is invalid or expired"),
    "invalid_credentials": ("账号或密码错误", "Wrong account or password"),
    "account_locked": ("登录失败次数过多，账号暂时锁定", "Too many failed logins; account locked"),
    "account_disabled": ("账号已停用", "The account is disabled"),
    "refresh_token_reused": (
        "刷新令牌被重复使用，已注销该会话",
        "Refresh token reused; the session was revoked",
    ),
    "forbidden": ("无权执行此操作", "You are not allowed to do this"),
    "not_in_scope": ("不在您的管辖范围内", "Outside your area of responsibility"),
    "self_dealing": (
        "不能为本人或本户操作积分",
        "Staff may not act on themselves or their household",
    ),
    "not_found": ("资源不存在", "Not found"),
    "method_not_allowed": ("不支持该请求方法", "Method not allowed"),
    "conflict": ("与当前状态冲突", "Conflict with the current state"),
    "node_not_empty": ("该节点下仍有数据，不能移动或删除", "The node still holds data"),
    "duplicate_phone": ("手机号已被使用", "The phone number is already registered"),
    "duplicate_username": ("用户名已被使用", "The username is already taken"),
    "invalid_state": ("当前状态不允许此操作", "Not allowed in the current state"),
    "idempotency_key_reused": (
        "幂等键已用于另一请求",
        "The Idempotency-Key was used for a different request",
    ),
    "idempotency_key_required": ("缺少 Idempotency-Key 请求头", "Idempotency-Key header required"),
    "idempotency_in_progress": ("相同请求正在处理中", "The same request is still in progress"),
    "payload_too_large": ("请求体过大", "The request body is too large"),
    "unsupported_media_type": ("不支持的内容类型", "Unsupported media type"),
    "validation_failed": ("输入校验未通过", "Validation failed"),
    "import_failed": (
        "导入文件有误，未导入任何数据",
        "The import file has errors; nothing was imported",
    ),
    "rate_limited": ("请求过于频繁，请稍后再试", "Too many requests; try again later"),
    "internal_error": ("服务器内部错误", "Internal server error"),
    "service_unavailable": ("服务暂不可用", "Service unavailable"),
    "database_unavailable": ("数据库连接中断，请重试", "The database connection was lost; retry"),
    "insufficient_points": ("积分余额不足", "Insufficient points"),
    # redemption (pointsvc/redemption): codes, offers, limits, holds, refunds
    "already_used": ("该码已被使用", "This code has already been used"),
    "expired": ("该码已过期", "This code has expired"),
    "wrong_type": ("码的类型不对", "This is a different kind of code"),
    "invalid": ("无效的码", "The code is not valid"),
    "revoked": ("该码已作废", "This code has been revoked"),
    "out_of_stock": ("库存不足", "Out of stock"),
    "offer_limit_reached": ("已达该商品的限购数量", "The offer's per-resident limit is reached"),
    "offer_not_available": ("该商品当前不可兑换", "The offer is not available now"),
    "daily_limit_reached": ("已达今日积分消费上限", "The daily spending limit is reached"),
    "cross_district": ("不能跨区使用积分", "Points cannot be spent in another district"),
    "refund_window_closed": ("已超过退款期限", "The refund window has closed"),
    "refund_exceeds_redeemed": ("退款积分超过已兑换积分", "The refund exceeds what was redeemed"),
    "hold_not_active": ("该冻结已失效", "The hold is no longer active"),
    "rule_not_found": ("积分规则不存在或未生效", "No active rule with this code"),
    "cap_exceeded": ("已达该规则的积分上限", "The rule's cap has been reached"),
    "already_reversed": ("该交易已被冲正", "The transaction was already reversed"),
    "not_reversible": ("该交易不可冲正", "This transaction cannot be reversed"),
    "approval_required": ("需要审批", "Approval required"),
    "duplicate_household": ("该社区已有同名家庭", "The community already has this household"),
    "duplicate_grant": ("该角色授权已存在", "This role grant already exists"),
    "undecodable_file": (
        "无法识别文件编码，请保存为 UTF-8 或 GBK 的 CSV",
        "The file is neither UTF-8 nor GBK text",
    ),
    "malformed_csv": ("CSV 格式有误", "The CSV file is malformed"),
    "invalid_csv_header": ("CSV 表头有误", "The CSV header is wrong"),
    "too_many_rows": ("文件行数超过上限", "The file has too many rows"),
    "merchant_suspended": ("该商户已被暂停", "The merchant is suspended"),
    "merchant_not_active": ("该商户尚未启用", "The merchant is not active"),
    "duplicate_application": (
        "已有相同的商户申请在审核中",
        "The same merchant application is already pending",
    ),
    # events (pointsvc/events): check-in reasons and sign-ups
    "not_yet_valid": ("该码尚未生效", "This code is not valid yet"),
    "wrong_event": ("这不是本活动的码", "This code belongs to another event"),
    "not_checked_in": ("尚未签到，不能签退", "Not checked in, so cannot check out"),
    "outside_geofence": ("不在活动地点范围内", "Outside the event's area"),
    "event_closed": ("活动未开放签到或已结束", "The event is not open for check-in"),
    "not_signed_up": ("未报名该活动", "Not signed up for this event"),
    "overlapping_event": ("正在参加另一个时间重叠的活动", "Checked in at an overlapping event"),
    "nonce_reused": ("该扫码编号已用于另一次扫码", "This nonce was used for another scan"),
    # leaderboards and honours (pointsvc/leaderboards)
    "certificate_invalid": (
        "证书验证码无效，不是本平台签发的证书",
        "The certificate code is not valid: this service did not issue it",
    ),
    # appeals (pointsvc/audit/appeals)
    "appeal_window_closed": ("已超过申诉期限", "The appeal window has closed"),
    "already_appealed": ("该决定已提出过申诉", "This decision has already been appealed"),
    "not_appealable": ("该记录不可申诉", "This cannot be appealed"),
    "original_decider": ("不能复核本人作出的决定", "You made the original decision"),
}


class DomainError(Exception):
    """A failure the caller can act on; carries an HTTP status and a stable code."""

    status = 400
    code = "bad_request"

    def __init__(
        self,
        code: str | None = None,
        detail: str | None = None,
        *,
        status: int | None = None,
        errors: Any = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or code or self.code)
        if code:
            self.code = code
        if status:
            self.status = status
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


def wants_english() -> bool:
    """Chinese unless the client's Accept-Language prefers English."""
    best = request.accept_languages.best_match(["zh-CN", "zh", "en"], default="zh-CN")
    return best == "en"


def title_for(code: str) -> str:
    zh, en = TITLES.get(code, (code, code))
    return en if wants_english() else zh


def problem_response(
    *,
    status: int,
    code: str,
    detail: str | None = None,
    errors: Any = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Build the single error shape every failure uses."""
    body: dict[str, Any] = {
        "type": f"https://pointsvc.dev/problems/{code}",
        "code": code,
        "title": title_for(code),
        "status": status,
    }
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    body["request_id"] = current_request_id()
    body["instance"] = request.path
    response = current_app.response_class(
        json.dumps(body, ensure_ascii=False), status=status, mimetype=PROBLEM_MIMETYPE
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    503: "service_unavailable",
}


def _webargs_messages(error: HTTPException) -> Any:
    data = getattr(error, "data", None) or {}
    return data.get("errors") or data.get("messages")


def _flatten_webargs(messages: Any) -> Any:
    """webargs nests errors by location ({"json": {...}}); callers want field -> messages."""
    if isinstance(messages, dict) and len(messages) == 1:
        (location, inner), = messages.items()
        if location in {"json", "query", "form", "files", "headers", "view_args", "path"}:
            return inner
    return messages


def handle_http_exception(error: HTTPException) -> Response:
    """Map werkzeug/webargs/flask-smorest errors to problem+json."""
    status = error.code or 500
    if status >= 500:
        return handle_unexpected(error)
    code = _HTTP_CODES.get(status, "bad_request")
    messages = _webargs_messages(error)
    headers: dict[str, str] = {}
    data = getattr(error, "data", None) or {}
    if isinstance(data, dict) and data.get("headers"):
        headers.update(data["headers"])
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    if status == 429:
        retry_after = getattr(error, "retry_after", None)
        headers["Retry-After"] = str(retry_after or _limiter_retry_after())
    errors = None
    if messages:
        flat = _flatten_webargs(messages)
        if status == 400 and _is_json_decode_error(flat):
            code = "malformed_json"
        else:
            errors = flat
    detail = None if messages else (error.description if status not in (404, 405) else None)
    return problem_response(status=status, code=code, detail=detail, errors=errors, headers=headers)


def _is_json_decode_error(messages: Any) -> bool:
    text = json.dumps(messages)
    return "Invalid JSON body" in text


def _limiter_retry_after() -> int:
    import time

    from .extensions import limiter

    current = limiter.current_limit
    if current is not None:
        return max(1, int(current.reset_at - time.time()))
    return 60


def handle_domain_error(error: DomainError) -> Response:
    return problem_response(
        status=error.status,
        code=error.code,
        detail=error.detail,
        errors=error.errors,
        headers=error.headers,
        extra=error.extra,
    )


def handle_unexpected(error: Exception) -> Response:
    """500 without a stack trace to the client; the trace goes to the log with the request id."""
    original = getattr(error, "original_exception", None) or error
    log.error(
        "unhandled error request_id=%s path=%s",
        current_request_id(),
        request.path,
        exc_info=(type(original), original, original.__traceback__),
    )
    return problem_response(status=500, code="internal_error")


def handle_database_error(error: Exception) -> Response:
    """A dropped database connection is 503 (retry); any other driver error is a 500."""
    if not getattr(error, "connection_invalidated", False):
        return handle_unexpected(error)
    from .extensions import db

    db.session.rollback()
    log.warning("database connection lost request_id=%s path=%s", current_request_id(),
                request.path)
    response = problem_response(status=503, code="database_unavailable",
                                detail="the database connection was lost; retry the request")
    response.headers["Retry-After"] = "1"
    return response


def handle_out_of_range(error: Exception) -> Response:
    """A number the database cannot hold is the caller's mistake: 422, not a 500."""
    from .extensions import db

    db.session.rollback()
    log.info("out-of-range value request_id=%s: %s", getattr(g, "request_id", None),
             type(error).__name__)
    return problem_response(status=422, code="validation_failed",
                            detail="a number in the request is out of range")


def register_error_handlers(app: Flask) -> None:
    from sqlalchemy.exc import DataError, DBAPIError

    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(OverflowError, handle_out_of_range)
    app.register_error_handler(DataError, handle_out_of_range)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as documented in the OpenAPI components (name: Problem)."""

    type = ma.fields.String(required=True)
    code = ma.fields.String(
        required=True, metadata={"description": "Stable machine-readable code (snake_case)"}
    )
    title = ma.fields.String(
        required=True, metadata={"description": "Chinese (default) or English by Accept-Language"}
    )
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Field-level validation errors"})
    request_id = ma.fields.String(
        metadata={"description": "Same as the X-Request-ID response header"}
    )
    instance = ma.fields.String(metadata={"description": "The request path"})
