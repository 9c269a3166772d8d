"""Errors at the HTTP edge: one table from our exceptions to status codes, and the handlers that use it.

Every error response is an :class:`~crews.api.models.ErrorBody`: a stable
code, a message that says what to fix and, for crew files, the located
issues. A mistake in the request is a 4xx; an unreachable NATS or Redis is a
503; only a bug is a 500.

ApiRequestError (CrewsError)   a request the API refuses before it reaches the job store
 ├── Unauthorized              no or unknown bearer key (401, with WWW-Authenticate: Bearer)
 ├── Forbidden                 the key lacks the scope, or the crew is another principal's (403)
 ├── MisdirectedHost           a Host or Origin header that names no served name (421 / 403)
 ├── LimitExceeded             a number in the request over the server's ceiling (422)
 ├── TooManyRequests           a principal over its rate or concurrency limit (429, with Retry-After)
 ├── BadRequest                a header or parameter the API cannot use (400)
 ├── UnsupportedMediaType      a crew body that is neither YAML nor JSON (415)
 ├── BodyTooLarge              a body over the size limit (413)
 └── IdempotencyConflict       an Idempotency-Key reused for another request (409)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from nats import errors as nats_errors
from nats.js import errors as js_errors
from pydantic_core import ErrorDetails
from starlette.exceptions import HTTPException

from bus.errors import PublishFailed
from crews.api.models import ErrorBody, ErrorIssue
from crews.errors import CrewNotFound, CrewsError, CrewSpecError, JobError, JobNotFound, PlanError
from crews.spec.problems import CrewFileError

log = logging.getLogger(__name__)


class ApiRequestError(CrewsError):
    """A request the API refuses at the edge."""


class Unauthorized(ApiRequestError):
    pass


class Forbidden(ApiRequestError):
    pass


class MisdirectedHost(ApiRequestError):
    pass


class LimitExceeded(ApiRequestError):
    pass


class TooManyRequests(ApiRequestError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class BadRequest(ApiRequestError):
    pass


class UnsupportedMediaType(ApiRequestError):
    pass


class BodyTooLarge(ApiRequestError):
    pass


class IdempotencyConflict(ApiRequestError):
    pass


ERRORS: dict[type[Exception], tuple[int, str]] = {
    CrewFileError: (422, "crew_file_invalid"),
    CrewSpecError: (422, "crew_invalid"),
    PlanError: (422, "inputs_invalid"),
    CrewNotFound: (404, "crew_not_found"),
    JobNotFound: (404, "job_not_found"),
    JobError: (409, "job_state_conflict"),
    Unauthorized: (401, "unauthorized"),
    Forbidden: (403, "forbidden"),
    MisdirectedHost: (421, "misdirected_request"),
    TooManyRequests: (429, "too_many_requests"),
    LimitExceeded: (422, "over_limit"),
    BadRequest: (400, "bad_request"),
    UnsupportedMediaType: (415, "unsupported_media_type"),
    BodyTooLarge: (413, "body_too_large"),
    IdempotencyConflict: (409, "idempotency_key_reused"),
    RequestValidationError: (422, "request_invalid"),
    redis.exceptions.ConnectionError: (503, "redis_unavailable"),
    redis.exceptions.TimeoutError: (503, "redis_unavailable"),
    nats_errors.ConnectionClosedError: (503, "nats_unavailable"),
    nats_errors.TimeoutError: (503, "nats_unavailable"),
    nats_errors.NoRespondersError: (503, "nats_unavailable"),
    js_errors.ServiceUnavailableError: (503, "nats_unavailable"),
    PublishFailed: (503, "nats_unavailable"),  # JetStream did not store a submission
}
"""Exception type → (HTTP status, error code); an exception takes the entry of its nearest class."""

_UNAVAILABLE = {"redis_unavailable": "Redis", "nats_unavailable": "NATS"}


def lookup(exc: BaseException) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in ERRORS:
            return ERRORS[cls]
    return 500, "internal_error"


def error_response(exc: BaseException) -> JSONResponse:
    """The response for ``exc`` according to :data:`ERRORS`."""
    status, code = lookup(exc)
    issues: list[ErrorIssue] = []
    if isinstance(exc, CrewFileError):
        issues = [ErrorIssue(**vars(issue)) for issue in exc.issues]
    if isinstance(exc, RequestValidationError):
        message = validation_message(exc.errors())
    elif code in _UNAVAILABLE:
        message = f"cannot reach {_UNAVAILABLE[code]} ({exc or type(exc).__name__}): try again shortly"
    else:
        message = str(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    body = ErrorBody(error=code, message=message, issues=issues)
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line per problem: where, then what is wrong."""
    return "; ".join(_one(error) for error in errors)


def _one(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "json_invalid":
        reason = error.get("ctx", {}).get("error", "")
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return f"the body is not valid JSON ({reason}{at})"
    where = {"body": "body", "query": "query parameter", "header": "header", "path": "path"}.get(loc[0], "")
    field = ".".join(loc[1:])
    if error["type"] == "missing" and loc[0] == "body" and not field:
        return "the body is missing: send a JSON object"
    if error["type"] == "extra_forbidden":
        return f"{where} field '{field}' is not allowed"
    if error["type"] == "literal_error":
        return f"{where} '{field}' is {error['input']!r}: expected {error.get('ctx', {}).get('expected', '')}"
    return f"{where} '{field}': {error['msg']}" if field else f"{where}: {error['msg']}"


async def _handle(request: Request, exc: Exception) -> JSONResponse:
    response = error_response(exc)
    if response.status_code >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return response


async def _http(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (unknown path, wrong method) in our error body."""
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = "no such endpoint: see /docs" if exc.status_code == 404 else str(exc.detail)
    body = ErrorBody(error=codes.get(exc.status_code, "http_error"), message=message)
    return JSONResponse(body.model_dump(mode="json"), status_code=exc.status_code, headers=exc.headers)


async def _bug(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    body = ErrorBody(error="internal_error", message="the API failed on this request; its log says why")
    return JSONResponse(body.model_dump(mode="json"), status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers: every entry of :data:`ERRORS`, Starlette's HTTP errors, and bugs."""
    for cls in ERRORS:
        app.add_exception_handler(cls, _handle)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _bug)
