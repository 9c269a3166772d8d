"""A small async client of the crews HTTP API, for the CLI (and anyone scripting crews)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from crews.api.models import CrewSummary, JobList, JobSummary, JobView, RoleList, RoleLoad
from crews.errors import CrewsError
from crews.jobs.store import StackProcess


class ApiError(CrewsError):
    """The API answered with an error; the message is the API's."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{message} (HTTP {status})")
        self.status = status


class CrewsClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> CrewsClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._http.request(method, path, **kwargs)
        if response.is_error:
            raise ApiError(response.status_code, _message(response))
        return response.json() if response.content else None

    async def healthy(self) -> bool:
        try:
            response = await self._http.get("/readyz")
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    async def register_crew(self, yaml_text: str) -> CrewSummary:
        result = await self._call(
            "POST", "/crews", content=yaml_text.encode(), headers={"Content-Type": "application/yaml"}
        )
        return CrewSummary.model_validate(result)

    async def submit(
        self, crew: str, inputs: dict[str, Any], idempotency_key: str | None = None
    ) -> JobSummary:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        result = await self._call("POST", f"/crews/{crew}/jobs", json={"inputs": inputs}, headers=headers)
        return JobSummary.model_validate(result)

    async def job(self, job: str) -> JobView:
        return JobView.model_validate(await self._call("GET", f"/jobs/{job}"))

    async def jobs(self, crew: str | None = None, status: str | None = None) -> list[JobSummary]:
        params = {k: v for k, v in {"crew": crew, "status": status}.items() if v}
        return JobList.model_validate(await self._call("GET", "/jobs", params=params)).jobs

    async def roles(self) -> list[RoleLoad]:
        return RoleList.model_validate(await self._call("GET", "/roles")).roles

    async def processes(self) -> list[StackProcess]:
        """The local stack's processes and their restarts (empty where no ``crews up`` runs)."""
        return RoleList.model_validate(await self._call("GET", "/roles")).processes

    async def cancel(self, job: str) -> JobView:
        return JobView.model_validate(await self._call("POST", f"/jobs/{job}/cancel", json={}))

    async def approvals(self, job: str) -> list[dict[str, Any]]:
        """The job's tool calls that need (or had) a person's approval."""
        result: dict[str, Any] = await self._call("GET", f"/jobs/{job}/approvals")
        approvals: list[dict[str, Any]] = result["approvals"]
        return approvals

    async def decide(
        self, job: str, approval: str, approve: bool, comment: str = "", arguments_sha256: str | None = None
    ) -> dict[str, Any]:
        """Approve or deny one waiting call; ``arguments_sha256``: refuse if it is not the call you saw."""
        body: dict[str, Any] = {"approve": approve, "comment": comment}
        if arguments_sha256 is not None:
            body["arguments_sha256"] = arguments_sha256
        result: dict[str, Any] = await self._call("POST", f"/jobs/{job}/approvals/{approval}", json=body)
        return result

    async def events(self, job: str) -> AsyncIterator[dict[str, Any]]:
        """The job's A2A events (StreamResponse JSON) from the start until it ends."""
        async with aconnect_sse(self._http, "GET", f"/jobs/{job}/events", timeout=None) as source:
            if source.response.is_error:
                await source.response.aread()
                raise ApiError(source.response.status_code, _message(source.response))
            async for sse in source.aiter_sse():
                if sse.data:
                    yield json.loads(sse.data)


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("message") or body.get("error") or body
        return detail if isinstance(detail, str) else json.dumps(detail)
    return str(body)
