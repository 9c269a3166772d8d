"""Operations: ``/healthz``, ``/readyz`` (NATS and Redis reachable), Prometheus ``/metrics``, ``/roles`` (load)."""

from __future__ import annotations

import asyncio

import redis.exceptions
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from nats import errors as nats_errors
from nats.js import errors as js_errors

from bus import subjects
from crews.api.deps import Deps, Services, require, require_key
from crews.api.metrics import CONTENT_TYPE, RequestMetrics, queue_depths, render, take_snapshot
from crews.api.models import Health, Readiness, RoleList, RoleLoad

router = APIRouter(tags=["operations"])

CHECK_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up (no dependency is checked: use /readyz for that)."""
    return Health()


@router.get("/readyz", responses={503: {"model": Readiness, "description": "NATS or Redis is unreachable."}})
async def readyz(deps: Deps) -> JSONResponse:
    """Ready to serve: NATS (and its JetStream jobs stream) and Redis answer within 2 s."""
    checks = {"nats": await _check_nats(deps), "redis": await _check_redis(deps)}
    body = Readiness(ready=all(v == "ok" for v in checks.values()), checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


async def _check_nats(deps: Services) -> str:
    if not deps.nc.is_connected:
        return "not connected to NATS (reconnecting)"
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await deps.js.stream_info(subjects.JOBS_STREAM)
    except (TimeoutError, nats_errors.Error, js_errors.Error) as exc:
        return f"JetStream does not answer: {exc or type(exc).__name__}"
    return "ok"


async def _check_redis(deps: Services) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await deps.store.redis.ping()
    except (TimeoutError, redis.exceptions.RedisError, OSError) as exc:
        return f"cannot reach Redis: {exc or type(exc).__name__}"
    return "ok"


@router.get(
    "/metrics",
    dependencies=[Depends(require_key), Depends(require("admin"))],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}}}},
)
async def metrics(request: Request, deps: Deps) -> Response:
    """Prometheus text: jobs and steps by state, queue depth and tokens per role, HTTP requests."""
    snapshot = await take_snapshot(deps.store, deps.js, deps.api.api_scan_jobs)
    requests: RequestMetrics = request.app.state.request_metrics
    return Response(render(snapshot, requests), media_type=CONTENT_TYPE)


@router.get("/roles", dependencies=[Depends(require_key), Depends(require("admin"))])
async def roles(deps: Deps) -> RoleList:
    """Every role of every registered crew: steps waiting for it, and its workers (local stack)."""
    depths = await queue_depths(deps.store, deps.js)
    workers = await deps.store.worker_counts()
    return RoleList(
        roles=[
            RoleLoad(crew=crew, role=role, queue_depth=depth, workers=workers.get(f"{crew}/{role}"))
            for (crew, role), depth in sorted(depths.items())
        ],
        processes=await deps.store.stack_processes(),
    )
