"""A task's webhooks (A2A ``TaskPushNotificationConfig``), kept beside its job in Redis.

``crews:{job:<id>}:a2a:push`` maps a config id to the stored config (URL,
token, authentication), with the job's TTL. The URL is checked
(``crews.a2a.push.guard``) when the config is created. What each delivery
carries:

| config | delivery header |
|---|---|
| ``token`` | ``X-A2A-Notification-Token: <token>`` (the spec's; compare it on receipt) |
| ``authentication`` ``{scheme: "Bearer", credentials: …}`` (any scheme but the next) | ``Authorization: <scheme> <credentials>`` |
| ``authentication`` ``{scheme: "HMAC-SHA256", credentials: <secret>}`` | ``X-Crews-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>`` |

Every delivery also names itself (``X-Crews-Delivery: <task>/<config>/<event seq>``)
so a receiver can drop a repeat. Get and List answer a config without its
credentials.
"""

from __future__ import annotations

import re
import uuid

import redis.asyncio as aioredis
from a2a.types import (
    AuthenticationInfo,
    ListTaskPushNotificationConfigsResponse,
    TaskPushNotificationConfig,
)
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError
from pydantic import BaseModel

from crews.a2a.push.guard import WebhookRefused, check_webhook
from crews.a2a.settings import A2ASettings

SIGNED = "HMAC-SHA256"
"""The authentication scheme that asks for signed deliveries (its credentials are the secret)."""
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class StoredPush(BaseModel):
    """One webhook of one task, as kept in Redis."""

    id: str
    task_id: str
    url: str
    token: str = ""
    scheme: str = ""
    credentials: str = ""

    def public(self) -> TaskPushNotificationConfig:
        """The config as Get and List answer it: no credentials."""
        config = TaskPushNotificationConfig(id=self.id, task_id=self.task_id, url=self.url, token=self.token)
        if self.scheme:
            config.authentication.CopyFrom(AuthenticationInfo(scheme=self.scheme))
        return config


def push_key(job: str) -> str:
    return f"crews:{{job:{job}}}:a2a:push"


class PushConfigs:
    """Create, read, list and delete a task's webhooks."""

    def __init__(self, client: aioredis.Redis, settings: A2ASettings, ttl_s: int) -> None:
        self._redis, self._settings, self._ttl_s = client, settings, ttl_s

    async def create(self, job: str, config: TaskPushNotificationConfig) -> TaskPushNotificationConfig:
        """Check and keep ``config`` for the task ``job`` (a config of the same id is replaced)."""
        if not config.url:
            raise InvalidParamsError(message="a push notification config needs a 'url'")
        try:
            await check_webhook(config.url, allow_private=self._settings.push_allow_private)
        except WebhookRefused as exc:
            raise InvalidParamsError(message=str(exc)) from exc
        config_id = config.id or uuid.uuid4().hex
        if not _ID.fullmatch(config_id):
            raise InvalidParamsError(message="a push config id is 1-100 letters, digits, '_', '.' or '-'")
        auth = config.authentication
        if auth.scheme == SIGNED and not auth.credentials:
            raise InvalidParamsError(message=f"the {SIGNED} scheme needs its secret as 'credentials'")
        key = push_key(job)
        known: list[str] = await self._redis.hkeys(key)
        if config_id not in known and len(known) >= self._settings.push_max_configs:
            raise InvalidParamsError(
                message=f"task {job} has {len(known)} push configs, the most allowed "
                "(CREWS_A2A_PUSH_MAX_CONFIGS): delete one first"
            )
        stored = StoredPush(
            id=config_id,
            task_id=job,
            url=config.url,
            token=config.token,
            scheme=auth.scheme,
            credentials=auth.credentials,
        )
        await self._redis.hset(key, config_id, stored.model_dump_json())
        await self._redis.expire(key, self._ttl_s)
        return stored.public()

    async def get(self, job: str, config_id: str) -> TaskPushNotificationConfig:
        raw: str | None = await self._redis.hget(push_key(job), config_id)
        if raw is None:
            raise TaskNotFoundError(message=f"task {job} has no push notification config {config_id!r}")
        return StoredPush.model_validate_json(raw).public()

    async def page(
        self, job: str, page_size: int = 0, page_token: str = ""
    ) -> ListTaskPushNotificationConfigsResponse:
        """The task's configs in id order, a page at a time (the token is the last id of the page before)."""
        found = sorted(await self.stored(job), key=lambda c: c.id)
        after = [c for c in found if c.id > page_token] if page_token else found
        page = after[:page_size] if page_size > 0 else after
        response = ListTaskPushNotificationConfigsResponse(configs=[c.public() for c in page])
        if page and len(after) > len(page):
            response.next_page_token = page[-1].id
        return response

    async def delete(self, job: str, config_id: str) -> None:
        """Forget the config (nothing to do when there is none)."""
        await self._redis.hdel(push_key(job), config_id)

    async def stored(self, job: str) -> list[StoredPush]:
        """Every config of the task, with its credentials (for the deliveries)."""
        raw: dict[str, str] = await self._redis.hgetall(push_key(job))
        return [StoredPush.model_validate_json(value) for value in raw.values()]
