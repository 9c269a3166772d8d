"""The baseline: the benchmark crew run by CrewAI in one process, with an LLM that answers at once.

Run by ``bench.overhead`` with the interpreter of the CrewAI venv
(``bench.crewai_env``); it imports only the standard library and ``crewai``,
so it needs none of crews' packages. With ``--serve`` it stays up and runs a
chunk of jobs per line read from stdin, so the benchmark can alternate CrewAI
and crews chunks under the same machine load. Prints one JSON line per run::

    {"crewai": "1.x", "jobs": N, "job_s": [...], "llm_calls": 3N, ...}

The LLM is a ``BaseLLM`` subclass (CrewAI's documented way to plug in a
custom model) whose ``call`` returns a final answer immediately, so every
millisecond measured is CrewAI's own. The crew is built once and kicked off
once per job, as CrewAI's docs show (cheaper than building it per job).
Telemetry and tracing are off, so nothing waits on the network.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from typing import Any, ClassVar


def _quiet_crewai() -> None:
    """No telemetry from CrewAI in the baseline process (set here, not at import: importers keep theirs)."""
    for flag in ("CREWAI_DISABLE_TELEMETRY", "OTEL_SDK_DISABLED", "CREWAI_DISABLE_TRACKING"):
        os.environ.setdefault(flag, "true")
    os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")


ANSWER = "Thought: I now can give a great answer\nFinal Answer: three facts, one paragraph, approved."
ROLES = (
    ("Researcher", "Find facts about {topic}", "You dig up facts.", "Research {topic}.", "Three facts."),
    (
        "Writer",
        "Write about {topic}",
        "You write clearly.",
        "Write a paragraph from the facts.",
        "One paragraph.",
    ),
    ("Reviewer", "Check the article", "You check every claim.", "Review the paragraph.", "The final text."),
)


def build_crew() -> tuple[Any, Any]:
    """The same crew as ``bench.crew.CREW_YAML``: three agents, three sequential tasks; and its LLM."""
    from crewai import Agent, BaseLLM, Crew, Process, Task

    class InstantLLM(BaseLLM):  # type: ignore[misc]
        """Answers every call at once with a final answer."""

        calls: ClassVar[int] = 0

        def call(self, messages: Any, *args: Any, **kwargs: Any) -> str:
            InstantLLM.calls += 1
            return ANSWER

        def supports_function_calling(self) -> bool:
            return False

    llm = InstantLLM(model="instant")
    agents = [Agent(role=r, goal=g, backstory=b, llm=llm, verbose=False) for r, g, b, _, _ in ROLES]
    tasks = [
        Task(description=d, expected_output=e, agent=agent)
        for (_, _, _, d, e), agent in zip(ROLES, agents, strict=True)
    ]
    return Crew(agents=agents, tasks=tasks, process=Process.sequential, verbose=False), InstantLLM


def _run_jobs(crew: Any, llm_class: Any, jobs: int) -> dict[str, Any]:
    calls_before = llm_class.calls
    job_s = []
    cpu = time.process_time()
    result: Any = None
    for _ in range(jobs):
        begin = time.perf_counter()
        result = crew.kickoff(inputs={"topic": "honey bees"})
        job_s.append(time.perf_counter() - begin)
    return {
        "jobs": jobs,
        "job_s": job_s,
        "cpu_s": time.process_time() - cpu,
        "llm_calls": llm_class.calls - calls_before,
        "output": str(getattr(result, "raw", result))[:80],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="crewai_baseline")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--serve", action="store_true", help="after warm-up, read a job count per stdin line, answer each"
    )
    args = parser.parse_args(argv)
    _quiet_crewai()
    logging.disable(logging.WARNING)  # CrewAI warns on every call that token counts are approximate

    started = time.perf_counter()
    import crewai

    import_s = time.perf_counter() - started
    crew, llm_class = build_crew()
    for _ in range(args.warmup):
        crew.kickoff(inputs={"topic": "honey bees"})
    about = {"crewai": crewai.__version__, "import_s": import_s}
    if not args.serve:
        sys.stdout.write(json.dumps(about | _run_jobs(crew, llm_class, args.jobs)) + "\n")
        return
    sys.stdout.write(json.dumps(about | {"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:  # the benchmark alternates chunks of crews jobs and of these
        sys.stdout.write(json.dumps(about | _run_jobs(crew, llm_class, int(line))) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
