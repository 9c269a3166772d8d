"""Accept what CrewAI accepts: every fixture entry and generated variants go to CrewAI's own models and to crews.

CrewAI's side runs in the CrewAI venv (``crews.local.crewai_env``) as a subprocess
(``differential/crewai_accepts.py``: ``Agent(config=entry)``, ``Task(config=entry)``, as
``@CrewBase`` builds YAML entries); crews' side is ``crews import`` of the entry in a
CrewAI pair. Each entry must be accepted by both or refused by both. Keys that CrewAI
resolves from the project's Python code (``tools``, ``llm``, ``agent``, ``context``) are
not sent to CrewAI's models; on crews' side the entry's task names a fixed agent.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from crews.errors import CrewSpecError
from crews.local import crewai_env
from crews.spec.crewai.importer import load_crewai_texts

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "crewai"
SCRIPT = Path(__file__).resolve().parent / "differential" / "crewai_accepts.py"
FROM_CODE = ("tools", "llm", "agent", "context")
AGENT = {"role": "Analyst", "goal": "Analyse", "backstory": "Careful."}
TASK = {"description": "Do it.", "expected_output": "Done."}
MISSING = object()

AGENT_VARIANTS: dict[str, list[Any]] = {
    "role": ["", MISSING, 5, None, ["a"]],
    "goal": ["", MISSING, 3.5],
    "backstory": ["", MISSING, {"a": 1}],
    "max_iter": ["5", 5.0, 0, -1, "many", 2.5],
    "allow_delegation": ["yes", "maybe", 1],
    "max_execution_time": ["10", -3, "soon"],
    "verbose": [1, "perhaps"],
}
TASK_VARIANTS: dict[str, list[Any]] = {
    "description": ["", MISSING, 7, None],
    "expected_output": ["", MISSING, 5, ["x"]],
    "human_input": ["true", "maybe", 0],
    "output_file": ["", 5],
    "async_execution": ["no", "sometimes"],
    "guardrail": ["", 5],
}


def variants(
    base: dict[str, Any], table: dict[str, list[Any]], kind: str
) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for key, values in table.items():
        for value in values:
            entry = {k: v for k, v in base.items() if k != key}
            if value is not MISSING:
                entry[key] = value
            out.append(
                (f"{kind}.{key}={'<missing>' if value is MISSING else json.dumps(value)}", kind, entry)
            )
    return out


def fixture_cases() -> list[tuple[str, str, dict[str, Any]]]:
    cases = []
    for folder in sorted(p for p in FIXTURES.iterdir() if p.is_dir()):
        for kind, file in (("agent", "agents.yaml"), ("task", "tasks.yaml")):
            for key, entry in (yaml.safe_load((folder / file).read_text()) or {}).items():
                cases.append((f"{folder.name}/{kind}:{key}", kind, entry))
    return cases


CASES = fixture_cases() + variants(AGENT, AGENT_VARIANTS, "agent") + variants(TASK, TASK_VARIANTS, "task")


def crews_verdict(kind: str, entry: dict[str, Any]) -> str | None:
    """None when ``crews import`` accepts the entry in a CrewAI pair, else why not."""
    entry = {k: v for k, v in entry.items() if k not in FROM_CODE}
    agents = {"case": entry} if kind == "agent" else {"case": AGENT}
    tasks = {"case": {**(entry if kind == "task" else TASK), "agent": "case"}}
    try:
        load_crewai_texts(yaml.safe_dump(agents), yaml.safe_dump(tasks), name="differential")
    except CrewSpecError as exc:
        return str(exc).splitlines()[0]
    return None


@pytest.fixture(scope="module")
def crewai_verdicts() -> dict[str, str | None]:
    cases = [
        {"id": name, "kind": kind, "entry": {k: v for k, v in entry.items() if k not in FROM_CODE}}
        for name, kind, entry in CASES
    ]
    python = crewai_env.ensure(log=False).with_name("python")
    done = subprocess.run(
        [str(python), str(SCRIPT)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=110,
        check=True,
    )
    verdicts: dict[str, str | None] = json.loads(done.stdout)
    return verdicts


def test_every_fixture_and_variant_is_accepted_or_refused_by_both(
    crewai_verdicts: dict[str, str | None],
) -> None:
    assert set(crewai_verdicts) == {name for name, _, _ in CASES}
    disagreements = []
    for name, kind, entry in CASES:
        theirs, ours = crewai_verdicts[name], crews_verdict(kind, entry)
        if (theirs is None) != (ours is None):
            disagreements.append(f"{name}: CrewAI {theirs or 'accepts'}; crews {ours or 'accepts'}")
    assert disagreements == []
    refused = [name for name in crewai_verdicts if crewai_verdicts[name] is not None]
    assert any(name.startswith("agent.") for name in refused) and any(
        name.startswith("task.") for name in refused
    )
    assert all(
        crewai_verdicts[name] is None for name, _, _ in fixture_cases()
    )  # real projects load in CrewAI
