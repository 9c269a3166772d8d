"""A task's webhooks (A2A ``TaskPushNotificationConfig``), kept beside its job in Redis.

``crews:{job:<id>}:a2a:push`` maps a config id to the stored config (URL,
authentication scheme, and the token and credentials sealed with the
operator's key: ``crews.a2a.push.sealing``), with the job's TTL. Without
``CREWS_A2A_PUSH_SECRET_KEY`` a config with a token or credentials is refused
(one without both still works). The URL is checked (``crews.a2a.push.guard``)
when the config is created. What each delivery carries:

| config | delivery header |
|---|---|
| ``token`` | ``X-A2A-Notification-Token: <token>`` (the spec's; compare it on receipt) |
| ``authentication`` ``{scheme: "Bearer", credentials: …}`` (any scheme but the next) | ``Authorization: <scheme> <credentials>`` |
| ``authentication`` ``{scheme: "HMAC-SHA256", credentials: <secret>}`` | ``X-Crews-Signature: sha256=<hex HMAC-SHA256 of the body under the secret>`` |

Every delivery also names itself (``X-Crews-Delivery: <task>/<config>/<event seq>``)
so a receiver can drop a repeat. Get and List answer a config without its
token and credentials (the scheme stays): only the deliveries open them.
"""

from __future__ import annotations

import logging
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
from crews.a2a.push.sealing import PushSealer, PushSecrets, SealedUnreadable
from crews.a2a.settings import KEY_SETTING, A2ASettings

logger = logging.getLogger(__name__)

SIGNED = "HMAC-SHA256"
"""The authentication scheme that asks for signed deliveries (its credentials are the secret)."""
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class StoredPush(BaseModel):
    """One webhook of one task, as kept in Redis: its secrets sealed, never in the clear."""

    id: str
    task_id: str
    url: str
    scheme: str = ""
    sealed: str = ""
    """``PushSecrets`` sealed with the operator's key (empty: the config has none)."""

    def public(self) -> TaskPushNotificationConfig:
        """The config as Get and List answer it: no token, no credentials."""
        config = TaskPushNotificationConfig(id=self.id, task_id=self.task_id, url=self.url)
        if self.scheme:
            config.authentication.CopyFrom(AuthenticationInfo(scheme=self.scheme))
        return config


class PushTarget(BaseModel):
    """One webhook with its secrets opened, for a delivery (kept in memory only)."""

    id: str
    task_id: str
    url: str
    scheme: str = ""
    token: str = ""
    credentials: str = ""


def push_key(job: str) -> str:
    return f"crews:{{job:{job}}}:a2a:push"


class PushConfigs:
    """Create, read, list and delete a task's webhooks."""

    def __init__(self, client: aioredis.Redis, settings: A2ASettings, ttl_s: int) -> None:
        self._redis, self._settings, self._ttl_s = client, settings, ttl_s
        key = settings.push_secret_key
        self._sealer = PushSealer(key) if key is not None else None

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
            scheme=auth.scheme,
            sealed=self._seal(PushSecrets(token=config.token, credentials=auth.credentials)),
        )
        await self._redis.hset(key, config_id, stored.model_dump_json())
        await self._redis.expire(key, self._ttl_s)
        return stored.public()

    def _seal(self, secrets: PushSecrets) -> str:
        if not secrets:
            return ""
        if self._sealer is None:
            raise InvalidParamsError(
                message="this server keeps no webhook secrets: its operator has not set "
                f"{KEY_SETTING}. Register the webhook without 'token' and 'authentication.credentials', "
                f"or ask the operator to set {KEY_SETTING}"
            )
        return self._sealer.seal(secrets)

    async def get(self, job: str, config_id: str) -> TaskPushNotificationConfig:
        raw: str | None = await self._redis.hget(push_key(job), config_id)
        if raw is None:
            raise TaskNotFoundError(message=f"task {job} has no push notification config {config_id!r}")
        return StoredPush.model_validate_json(raw).public()

    async def page(
        self, job: str, page_size: int = 0, page_token: str = ""
    ) -> ListTaskPushNotificationConfigsResponse:
        """The task's configs in id order, a page at a time (the token is the last id of the page before)."""
        found = sorted(await self._stored(job), key=lambda c: c.id)
        after = [c for c in found if c.id > page_token] if page_token else found
        page = after[:page_size] if page_size > 0 else after
        response = ListTaskPushNotificationConfigsResponse(configs=[c.public() for c in page])
        if page and len(after) > len(page):
            response.next_page_token = page[-1].id
        return response

    async def delete(self, job: str, config_id: str) -> None:
        """Forget the config (nothing to do when there is none)."""
        await self._redis.hdel(push_key(job), config_id)

    async def targets(self, job: str) -> list[PushTarget]:
        """Every config of the task with its secrets opened (for the deliveries).

        A config whose secrets do not open (the key was changed and the old one dropped) is left
        out and logged: it is never delivered without the secrets its receiver checks.
        """
        targets = []
        for stored in await self._stored(job):
            try:
                secrets = self._open(stored)
            except SealedUnreadable:
                logger.exception("push: config %s of task %s is not delivered", stored.id, job)
                continue
            targets.append(
                PushTarget(
                    id=stored.id,
                    task_id=stored.task_id,
                    url=stored.url,
                    scheme=stored.scheme,
                    token=secrets.token,
                    credentials=secrets.credentials,
                )
            )
        return targets

    def _open(self, stored: StoredPush) -> PushSecrets:
        if not stored.sealed:
            return PushSecrets()
        if self._sealer is None:
            raise SealedUnreadable(
                f"{KEY_SETTING} is not set, and the config's secrets were sealed with a key"
            )
        return self._sealer.open(stored.sealed)

    async def _stored(self, job: str) -> list[StoredPush]:
        raw: dict[str, str] = await self._redis.hgetall(push_key(job))
        return [StoredPush.model_validate_json(value) for value in raw.values()]
