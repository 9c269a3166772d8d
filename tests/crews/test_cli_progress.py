"""``crews status`` / ``crews run``: the step table shows each step's attempts, from the job and from its events."""

from __future__ import annotations

import json

from rich.console import Console

from bus.contracts.codec import encode
from bus.contracts.events import ManagerDecision, decision_update, wrap
from crews.api.models import StepView
from crews.cli.progress import JobProgress


def rendered(progress: JobProgress) -> str:
    console = Console(width=120, record=True)
    console.print(progress.table())
    return console.export_text()


def test_attempts_come_from_the_job_view_and_from_working_events() -> None:
    progress = JobProgress("j1", state="running")
    progress.seed(
        [
            StepView(
                id="research", kind="task", task="research", role="researcher", depends_on=[],
                state="completed", attempts=2,
            )
        ]
    )  # fmt: skip
    progress.apply(
        {"statusUpdate": {"taskId": "j1.write", "status": {"state": "TASK_STATE_WORKING"}, "metadata": {
            "role": "writer", "attempt": 3.0}}}
    )  # fmt: skip

    lines = rendered(progress).splitlines()

    assert "attempts" in lines[2]
    research = next(line for line in lines if "research" in line)
    write = next(line for line in lines if "write" in line and "writer" in line)
    assert research.split("│")[4].strip() == "2"
    assert write.split("│")[4].strip() == "3"


def test_a_managers_decision_event_is_listed_and_the_job_keeps_its_state() -> None:
    decision = ManagerDecision(
        review="_review-shop", step="shop", decision="revise", member="cook", feedback="Add tea.",
        new_step="_try2-shop",
    )  # fmt: skip
    event = json.loads(encode(wrap(decision_update("j1", decision))))  # as GET /jobs/{id}/events sends it
    progress = JobProgress("j1", state="running")
    progress.apply(event)
    progress.apply(event)  # a replayed event is listed once

    assert (progress.state, progress.reason, progress.decisions) == ("running", "", [decision])
    assert "the manager sent back shop, _try2-shop (cook): Add tea." in rendered(progress)
