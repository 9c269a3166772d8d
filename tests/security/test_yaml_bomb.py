"""Crew files that cost more to read than they weigh: alias and merge bombs, deep nesting, slow parses.

The review reproduced: a 300-byte YAML body froze the API (``/healthz`` too)
for 7 s; the position walker re-expanded aliases, and parsing ran on the
event loop.
"""

from __future__ import annotations

import asyncio
import time

from crews.spec.load import load_crew_text
from crews.spec.positions import MAX_NODES
from crews.spec.problems import CrewFileError
from tests.crews.api.conftest import StartApi

HEAD = (
    "name: bomb\nroles: {r: {role: R, goal: G}}\ntasks: {t: {description: D, expected_output: O, agent: r}}\n"
)
YAML = {"content-type": "application/yaml"}


def alias_bomb(levels: int = 9) -> str:
    lines = ['l0: &l0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, levels):
        refs = ",".join([f"*l{i - 1}"] * 9)
        lines.append(f"l{i}: &l{i} [{refs}]")
    return HEAD + "inputs:\n  bomb:\n    default:\n" + "\n".join(f"      {line}" for line in lines) + "\n"


def merge_bomb(levels: int = 30) -> str:
    """Merges of merges (PyYAML keeps one of each merged key, so this one reads small)."""
    lines = ["m0: &m0 {k0: 1, k1: 1}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, levels)]
    return (
        HEAD
        + "inputs:\n  bomb:\n    type: object\n    default:\n"
        + "\n".join(f"      {line}" for line in lines)
        + "\n"
    )


def wide_merge() -> str:
    """One mapping merged into many: every use repeats its keys."""
    keys = ", ".join(f"k{i}: 1" for i in range(2000))
    lines = [f"base: &base {{{keys}}}"] + [f"m{i}: {{<<: *base, own: 1}}" for i in range(12)]
    return (
        HEAD
        + "inputs:\n  bomb:\n    type: object\n    default:\n"
        + "\n".join(f"      {line}" for line in lines)
        + "\n"
    )


def wide_mapping() -> str:
    keys = ", ".join(f"k{i}: 1" for i in range(MAX_NODES + 1))
    return HEAD + f"inputs:\n  bomb:\n    type: object\n    default: {{{keys}}}\n"


def test_bombs_and_deep_nesting_are_refused_quickly() -> None:
    for text, says in (
        (alias_bomb(), f"over {MAX_NODES} values"),
        (wide_merge(), f"over {MAX_NODES} values"),
        (wide_mapping(), f"over {MAX_NODES} keys"),
        (HEAD + "inputs: {x: {default: " + "[" * 5000 + "]" * 5000 + "}}\n", "nests"),
        (HEAD + "inputs: {x: {default: " + "[" * 60 + "]" * 60 + "}}\n", "deeper than"),
    ):
        started = time.monotonic()
        try:
            load_crew_text(text, "bomb.yaml")
        except CrewFileError as exc:
            assert says in str(exc), str(exc)
        else:
            raise AssertionError(f"accepted: {text[:80]}")
        assert time.monotonic() - started < 10.0  # unbounded, the alias bomb alone is 9**9 values
    assert len(alias_bomb()) < 600  # 9**9 values in a few hundred bytes
    assert load_crew_text(merge_bomb(), "merge.yaml").inputs["bomb"].default["m29"] == {"k0": 1, "k1": 1}


async def test_the_api_refuses_bombs_and_stays_responsive(start_api: StartApi) -> None:
    big = HEAD + "inputs:\n  x:\n    default:\n" + "".join(f"      - v{i}\n" for i in range(60_000))
    assert len(big) < 1024 * 1024
    async with start_api() as client:
        bombs = [client.post("/crews", content=text, headers=YAML) for text in (alias_bomb(), wide_merge())]
        slow = asyncio.ensure_future(client.post("/crews", content=big, headers=YAML))
        worst, probes = 0.0, 0
        while not slow.done():
            started = time.monotonic()
            assert (await client.get("/healthz")).status_code == 200
            worst, probes = max(worst, time.monotonic() - started), probes + 1
        answers = [*(await asyncio.gather(*bombs)), await slow]
        assert [a.status_code for a in answers] == [422, 422, 422], [a.text for a in answers]
        assert probes >= 1 and worst < 1.0, (probes, worst)  # the loop kept serving while the file was read


async def test_a_parse_over_the_time_limit_is_refused(start_api: StartApi) -> None:
    big = HEAD + "inputs:\n  x:\n    default:\n" + "".join(f"      - v{i}\n" for i in range(60_000))
    async with start_api(api_parse_timeout_s=0.05) as client:
        answer = await client.post("/crews", content=big, headers=YAML)
        assert answer.status_code == 422 and "CREWS_API_PARSE_TIMEOUT_S" in answer.json()["message"]
