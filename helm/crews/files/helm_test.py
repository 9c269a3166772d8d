"""``helm test``: the API is ready, and what a role needs answers: NATS (JetStream), Redis, the LLM pool.

Runs in the crews image (nats-py, redis and httpx are installed there) as the chart's test hook Pod,
which has a role's NATS user and a role's network policies, so a pass means a role's path to each
service is open. Reads:

    CREWS_TEST_API_URL    the API Service (http://<release>-crews-api:<port>); GET /readyz must be 200
    CREWS_NATS_URL        a role's NATS URL (its user and password); CREWS_TEST_STREAM: a stream it may read
    CREWS_REDIS_URL       PING
    CREWS_LLM_URLS        each endpoint's GET /models must list CREWS_LLM_MODEL (CREWS_LLM_API_KEY if set)
    CREWS_TEST_POOL_PODS  optional host:port of the pool's headless Service: every address it
                          resolves to must answer GET /v1/models too

Prints one line per check and exits 1 if any failed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from urllib.parse import unquote, urlsplit

import httpx
import nats
import redis.asyncio as aioredis

TIMEOUT_S = float(os.environ.get("CREWS_TEST_TIMEOUT_S", "10"))


async def check_api() -> str:
    url = os.environ["CREWS_TEST_API_URL"].rstrip("/") + "/readyz"
    async with httpx.AsyncClient(timeout=TIMEOUT_S) as client:
        response = await client.get(url)
    if response.status_code != 200 or not response.json().get("ready"):
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")
    return f"api ready ({url})"


async def check_nats() -> str:
    url = os.environ["CREWS_NATS_URL"]
    user = unquote(urlsplit(url.split(",")[0].strip()).username or "")
    nc = await nats.connect(
        url,
        inbox_prefix=f"_INBOX_{user}" if user else "_INBOX",  # the user's own inboxes, as bus/connect.py
        connect_timeout=TIMEOUT_S,
        max_reconnect_attempts=0,
        allow_reconnect=False,
    )
    try:
        stream = os.environ["CREWS_TEST_STREAM"]
        info = await nc.jetstream(timeout=TIMEOUT_S).stream_info(stream)
    finally:
        await nc.close()
    return f"nats ok (stream {stream}: {info.state.messages} messages)"


async def check_redis() -> str:
    client = aioredis.Redis.from_url(os.environ["CREWS_REDIS_URL"], socket_timeout=TIMEOUT_S)
    try:
        await client.ping()
    finally:
        await client.aclose()
    return "redis ok"


async def _models(client: httpx.AsyncClient, base: str) -> str:
    model = os.environ.get("CREWS_LLM_MODEL", "")
    response = await client.get(base.rstrip("/") + "/models")
    response.raise_for_status()
    served = [m.get("id") for m in response.json().get("data", [])]
    if model and model not in served:
        raise RuntimeError(f"{base}: serves {served}, not {model!r}")
    return base


async def check_pool() -> str:
    key = os.environ.get("CREWS_LLM_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    bases = [u.strip() for u in os.environ["CREWS_LLM_URLS"].split(",") if u.strip()]
    pods = os.environ.get("CREWS_TEST_POOL_PODS", "")
    if pods:
        host, port = pods.rsplit(":", 1)
        infos = await asyncio.get_running_loop().getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
        addresses = sorted({info[4][0] for info in infos})
        bases += [f"http://{f'[{a}]' if ':' in a else a}:{port}/v1" for a in addresses]
    async with httpx.AsyncClient(timeout=TIMEOUT_S, headers=headers) as client:
        answered = await asyncio.gather(*(_models(client, base) for base in bases))
    return f"llm pool ok ({len(answered)} endpoints: {', '.join(answered)})"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def main() -> int:
    failed = 0
    for check in (check_api, check_nats, check_redis, check_pool):
        try:
            say(await asyncio.wait_for(check(), 3 * TIMEOUT_S))
        except Exception as exc:  # noqa: BLE001  (each check's failure is reported, then the next runs)
            failed += 1
            say(f"FAILED {check.__name__}: {type(exc).__name__}: {exc}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
