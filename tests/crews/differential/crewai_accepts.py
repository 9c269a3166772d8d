"""Run in the CrewAI venv: which agent and task entries CrewAI's own models accept.

Reads JSON from stdin, ``[{"id": ..., "kind": "agent"|"task", "entry": {...}}, ...]``, builds each entry
as CrewAI builds a YAML entry (``Agent(config=entry)``, ``Task(config=entry)``) and prints
``{"<id>": null | "<why it was refused>"}``. Imports only the standard library and crewai.
"""

import json
import os
import sys

os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")
os.environ.setdefault("OPENAI_API_KEY", "sk-unused")

from crewai import Agent, Task


def verdict(kind, entry):
    try:
        if kind == "agent":
            Agent(config=entry)
        else:
            Task(config=entry)
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return None


def main():
    cases = json.load(sys.stdin)
    json.dump({case["id"]: verdict(case["kind"], case["entry"]) for case in cases}, sys.stdout)


main()
