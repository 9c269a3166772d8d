"""The scripted OpenAI-compatible server: script format, matching, replies, runtime changes, the process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from inference.headers import request_headers
from inference.testing.script import EchoReply, ErrorReply, JsonReply, Script, TextReply, ToolCallsReply
from inference.testing.server import ScriptedServer


def ask(
    server_url: str,
    content: str = "hello there",
    *,
    job: str = "j",
    role: str = "r",
    step: str = "s",
    model: str = "crews-local",
    **body: Any,
) -> httpx.Response:
    payload = {"model": model, "messages": [{"role": "user", "content": content}], **body}
    return httpx.post(
        f"{server_url}/chat/completions", json=payload, headers=request_headers(job, role, step), timeout=10
    )


def content_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_script_format_and_shorthands() -> None:
    script = Script.model_validate(
        {
            "rules": [
                {
                    "role": "w",
                    "replies": [
                        "plain",
                        {"tool_calls": [{"name": "f"}], "text": "calling"},
                        {"json": {"a": 1}},
                        {"echo": "got {input}"},
                        {"error": 503, "times": 2, "retry_after": 1},
                    ],
                }
            ]
        }
    )
    kinds = [type(reply) for reply in script.rules[0].replies]
    assert kinds == [TextReply, ToolCallsReply, JsonReply, EchoReply, ErrorReply]
    assert script.default == [EchoReply()]
    assert Script.model_validate(script.model_dump(by_alias=True)) == script


def test_invalid_reply_says_what_keys_are_allowed() -> None:
    with pytest.raises(ValueError, match="tool_calls, text, json, echo, error"):
        Script.model_validate({"rules": [{"replies": [{"answer": "x"}]}]})


def test_script_from_yaml_and_json_files(tmp_path: Path) -> None:
    yaml_file = tmp_path / "script.yaml"
    yaml_file.write_text("latency_s: 0.1\nrules:\n  - role: writer\n    replies: [done]\n")
    json_file = tmp_path / "script.json"
    json_file.write_text(json.dumps({"rules": [{"step": "s", "replies": [{"json": [1, 2]}]}]}))

    assert Script.from_file(yaml_file).rules[0].role == "writer"
    assert Script.from_file(yaml_file).latency_s == 0.1
    reply = Script.from_file(json_file).rules[0].replies[0]
    assert isinstance(reply, JsonReply) and reply.data == [1, 2]


def test_bad_script_file_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - role: writer\n    replys: [done]\n")
    with pytest.raises(ValueError, match=r"bad\.yaml(.|\n)*replys"):
        Script.from_file(path)


def test_models_lists_the_served_name(scripted: ScriptedServer) -> None:
    scripted.set_script(Script(model="served-name"))
    models = httpx.get(f"{scripted.url}/models").json()
    assert [m["id"] for m in models["data"]] == ["served-name"]
    assert ask(scripted.url, model="crews-local").status_code == 404
    assert ask(scripted.url, model="served-name").status_code == 200


def test_replies_in_order_per_job_and_step_last_repeats(scripted: ScriptedServer) -> None:
    scripted.set_script(Script.for_role("r", "first", "second"))
    assert [content_of(ask(scripted.url, job="a")) for _ in range(3)] == ["first", "second", "second"]
    assert content_of(ask(scripted.url, job="b")) == "first"
    assert content_of(ask(scripted.url, job="a", step="other")) == "first"


def test_first_matching_rule_wins_then_default(scripted: ScriptedServer) -> None:
    scripted.set_script(
        Script.model_validate(
            {
                "rules": [
                    {"role": "w", "step": "draft", "replies": ["w-draft"]},
                    {"role": "w", "replies": ["w-any"]},
                    {"step": "review", "replies": ["any-review"]},
                ],
                "default": ["fallback"],
            }
        )
    )
    assert content_of(ask(scripted.url, role="w", step="draft")) == "w-draft"
    assert content_of(ask(scripted.url, role="w", step="edit")) == "w-any"
    assert content_of(ask(scripted.url, role="x", step="review")) == "any-review"
    assert content_of(ask(scripted.url, role="x", step="edit")) == "fallback"


def test_default_script_echoes(scripted: ScriptedServer) -> None:
    assert content_of(ask(scripted.url, "what is a crew")) == "what is a crew"


def test_echo_template_fields(scripted: ScriptedServer) -> None:
    scripted.set_script(Script(default=[EchoReply(echo="[{job}/{role}/{step}] {input}")]))
    assert content_of(ask(scripted.url, "hi", job="j1", role="r1", step="s1")) == "[j1/r1/s1] hi"


def test_tool_calls_reply_is_openai_shaped(scripted: ScriptedServer) -> None:
    scripted.set_script(Script.for_role("r", {"tool_calls": [{"name": "search", "arguments": {"q": "x y"}}]}))
    choice = ask(scripted.url).json()["choices"][0]
    [call] = choice["message"]["tool_calls"]
    assert choice["finish_reason"] == "tool_calls"
    assert call["type"] == "function"
    assert call["function"] == {"name": "search", "arguments": '{"q": "x y"}'}
    assert call["id"].startswith("call_")


def test_by_turn_answers_the_same_conversation_the_same_way(scripted: ScriptedServer) -> None:
    call = {
        "name": "ledger_append",
        "arguments": {"entry": "{job}/{step}/{turn}", "n": 1, "tags": ["{role}"]},
    }
    scripted.set_script(Script.model_validate({"rules": [{"role": "r", "by_turn": True, "replies": [
        {"tool_calls": [call]}, {"tool_calls": [call]}, "done"]}]}))  # fmt: skip
    first = [{"role": "user", "content": "go"}]
    second = [*first, {"role": "assistant", "content": None}, {"role": "tool", "content": "ok"}]

    def arguments(messages: list[dict[str, Any]]) -> dict[str, Any]:
        response = ask(scripted.url, job="j1", step="post", messages=messages)
        return dict(
            json.loads(response.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
        )

    assert arguments(first) == {"entry": "j1/post/1", "n": 1, "tags": ["r"]}
    assert arguments(second) == {"entry": "j1/post/2", "n": 1, "tags": ["r"]}
    assert arguments(first) == {"entry": "j1/post/1", "n": 1, "tags": ["r"]}  # asked again: the same answer
    third = [*second, {"role": "assistant", "content": None}, {"role": "tool", "content": "ok"}]
    assert content_of(ask(scripted.url, job="j1", step="post", messages=third)) == "done"
    assert content_of(ask(scripted.url, job="j1", step="post", messages=[*third, *third[1:3]])) == "done"


def test_json_reply_is_json_text(scripted: ScriptedServer) -> None:
    scripted.set_script(Script.for_role("r", {"json": {"ok": True}}))
    assert json.loads(content_of(ask(scripted.url))) == {"ok": True}


def test_error_replies_with_status_and_retry_after(scripted: ScriptedServer) -> None:
    scripted.set_script(
        Script.for_role("r", {"error": 429, "times": 2, "retry_after": 2, "message": "slow down"}, "ok")
    )
    first, second, third = (ask(scripted.url) for _ in range(3))
    assert (first.status_code, second.status_code) == (429, 429)
    assert first.headers["retry-after"] == "2"
    assert first.json()["error"]["message"] == "slow down"
    assert content_of(third) == "ok"


def test_usage_counts_words(scripted: ScriptedServer) -> None:
    scripted.set_script(Script.for_role("r", "four words of answer"))
    usage = ask(scripted.url, "five words in this question").json()["usage"]
    assert usage == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}


def test_latency_delays_the_reply(scripted: ScriptedServer) -> None:
    scripted.set_script(Script.for_role("r", {"text": "slow", "latency_s": 0.3}, step="s"))
    started = time.monotonic()
    assert content_of(ask(scripted.url)) == "slow"
    assert time.monotonic() - started >= 0.3


def test_stream_is_refused(scripted: ScriptedServer) -> None:
    response = ask(scripted.url, stream=True)
    assert response.status_code == 400
    assert "stream" in response.json()["error"]["message"]


def test_script_replaced_over_http_resets_positions(scripted: ScriptedServer) -> None:
    base = scripted.url.removesuffix("/v1")
    scripted.set_script(Script.for_role("r", "old"))
    assert content_of(ask(scripted.url)) == "old"

    posted = httpx.post(f"{base}/script", json={"rules": [{"role": "r", "replies": ["new-1", "new-2"]}]})

    assert posted.status_code == 200
    assert content_of(ask(scripted.url)) == "new-1"
    assert httpx.get(f"{base}/script").json()["rules"][0]["replies"][0]["text"] == "new-1"
    [seen] = httpx.get(f"{base}/requests").json()
    assert (seen["job"], seen["role"], seen["step"]) == ("j", "r", "s")


def test_posting_a_bad_script_is_a_422(scripted: ScriptedServer) -> None:
    base = scripted.url.removesuffix("/v1")
    response = httpx.post(f"{base}/script", json={"rules": [{"replies": []}]})
    assert response.status_code == 422


async def test_async_context_manager_serves_and_stops() -> None:
    async with ScriptedServer(Script.for_role("r", "inside")) as server:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{server.url}/models")
            assert response.status_code == 200
        url = server.url
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{url}/models", timeout=2)


@pytest.fixture
def scripted_process(tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "script.yaml"
    path.write_text("rules:\n  - role: r\n    replies: ['from the process']\n")
    argv = [sys.executable, "-m", "inference.testing.server", "--script", str(path), "--port", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("scripted LLM ready on http://127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_runs_as_a_process_and_prints_its_ready_line(scripted_process: str) -> None:
    assert content_of(ask(scripted_process)) == "from the process"


def test_process_refuses_a_bad_script_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("rules: [{replies: [{nope: 1}]}]\n")
    argv = [sys.executable, "-m", "inference.testing.server", "--script", str(path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert "bad.yaml" in done.stderr
