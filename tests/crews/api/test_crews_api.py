"""/crews: register (YAML or JSON), list, get, delete, and the errors a bad crew file gets."""

from __future__ import annotations

import json

import httpx
import yaml

from crews.spec.load import load_crew_text
from tests.crews.api.conftest import CREW_YAML

YAML = {"content-type": "application/yaml"}


async def test_register_list_get_delete(client: httpx.AsyncClient) -> None:
    created = await client.post("/crews", content=CREW_YAML, headers=YAML)
    assert created.status_code == 201
    assert created.headers["location"] == "/crews/digest"
    assert created.json() == {
        "name": "digest",
        "description": "Research a topic and write about it.",
        "process": "sequential",
        "roles": ["researcher", "writer"],
        "tasks": ["research", "write"],
        "inputs": {
            "topic": {"type": "string", "default": None, "description": "What to write about"},
            "words": {"type": "integer", "default": 80, "description": ""},
        },
    }

    listed = await client.get("/crews")
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()["crews"]] == ["digest"]

    got = await client.get("/crews/digest")
    assert got.status_code == 200
    assert got.json() == load_crew_text(CREW_YAML).model_dump(mode="json")

    as_yaml = await client.get("/crews/digest", headers={"accept": "application/yaml"})
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert load_crew_text(as_yaml.text) == load_crew_text(CREW_YAML)

    deleted = await client.delete("/crews/digest")
    assert deleted.status_code == 204
    assert (await client.get("/crews")).json() == {"crews": []}


async def test_register_again_replaces(client: httpx.AsyncClient) -> None:
    await client.post("/crews", content=CREW_YAML, headers=YAML)
    changed = CREW_YAML.replace("Research a topic and write about it.", "Version two.")
    again = await client.post("/crews", content=changed, headers={"content-type": "text/yaml; charset=utf-8"})
    assert again.status_code == 200
    assert (await client.get("/crews/digest")).json()["description"] == "Version two."


async def test_register_json(client: httpx.AsyncClient) -> None:
    response = await client.post("/crews", json=yaml.safe_load(CREW_YAML))
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "digest"


async def test_unknown_crew_is_404(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/crews/nope"), await client.delete("/crews/nope")):
        assert response.status_code == 404
        body = response.json()
        assert body["error"] == "crew_not_found"
        assert "no crew named 'nope'" in body["message"]


async def test_bad_crew_file_is_422_with_line_and_field(client: httpx.AsyncClient) -> None:
    bad = CREW_YAML.replace("    agent: writer", "    agent: writter")
    response = await client.post("/crews", content=bad, headers=YAML)
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "crew_file_invalid"
    line = bad.splitlines().index("    agent: writter") + 1
    [issue] = body["issues"]
    assert issue["file"] == "<body>"
    assert issue["line"] == line
    assert issue["field"] == "tasks.write.agent"
    assert "did you mean 'writer'" in issue["message"]
    assert body["message"].startswith(f"<body>:{line}:")
    assert (await client.get("/crews")).json() == {"crews": []}


async def test_unknown_field_is_named(client: httpx.AsyncClient) -> None:
    bad = CREW_YAML.replace("    goal: Find facts about {topic}.", "    gaol: Find facts about {topic}.")
    body = (await client.post("/crews", content=bad, headers=YAML)).json()
    fields = {issue["field"]: issue["message"] for issue in body["issues"]}
    assert "did you mean 'goal'" in fields["roles.researcher.gaol"]


async def test_broken_yaml_and_json_get_positions(client: httpx.AsyncClient) -> None:
    broken_yaml = await client.post("/crews", content="name: [unclosed\nroles: {}\n", headers=YAML)
    assert broken_yaml.status_code == 422
    assert broken_yaml.json()["issues"][0]["file"] == "<body>"

    broken_json = await client.post(
        "/crews", content='{"name": "x",\n "roles": }', headers={"content-type": "application/json"}
    )
    assert broken_json.status_code == 422
    [issue] = broken_json.json()["issues"]
    assert (issue["line"], issue["column"]) == (2, 11)
    assert "not valid JSON" in issue["message"]


async def test_not_a_mapping_or_not_utf8(client: httpx.AsyncClient) -> None:
    for content in (b"- just\n- a list\n", b"\xff\xfe name"):
        response = await client.post("/crews", content=content, headers=YAML)
        assert response.status_code == 422, response.text
        assert response.json()["message"].startswith("<body>:1:")


async def test_unsupported_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/crews", content=CREW_YAML, headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert "application/yaml" in response.json()["message"]
    bare = await client.post("/crews", content=CREW_YAML.encode())
    assert bare.status_code == 415


async def test_json_crew_with_schema_error(client: httpx.AsyncClient) -> None:
    data = yaml.safe_load(CREW_YAML)
    data["process"] = "sequentail"
    response = await client.post(
        "/crews", content=json.dumps(data, indent=2), headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    [issue] = response.json()["issues"]
    assert issue["field"] == "process"
    assert "did you mean 'sequential'" in issue["message"]


async def test_crew_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/schemas/crew.json")).json()
    assert schema["title"] == "crews crew file"
    assert {"name", "roles", "tasks"} <= set(schema["required"])
