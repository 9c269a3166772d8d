"""Which CrewAI keys crews honours, which it leaves out (warned about by name), and the values it corrects.

CrewAI accepts what its own ``Agent`` / ``Task`` models accept; these rules
keep crews accepting the same (``tests/crews/test_crewai_differential.py``).
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter, ValidationError

from crews.spec.problems import Problem, suggest

AGENT_KEYS = {
    "role", "goal", "backstory", "llm", "tools", "allow_delegation", "max_iter", "max_execution_time", "max_tokens",
}  # fmt: skip
AGENT_IGNORED = {
    "verbose", "cache", "function_calling_llm", "step_callback", "memory", "config",
    "system_template", "prompt_template", "response_template", "use_system_prompt",
    "allow_code_execution", "code_execution_mode", "respect_context_window", "max_retry_limit",
    "multimodal", "inject_date", "date_format", "reasoning", "max_reasoning_attempts", "planning",
    "planning_config", "embedder", "knowledge", "knowledge_sources", "knowledge_config",
    "knowledge_storage", "callbacks", "security_config", "apps", "mcps", "from_repository",
    "guardrail", "guardrail_max_retries", "a2a", "id",
}  # fmt: skip
TASK_KEYS = {
    "description", "expected_output", "agent", "context", "output_file", "human_input", "guardrail",
    "guardrails", "guardrail_max_retries",
}  # fmt: skip
TASK_IGNORED = {
    "name", "tools", "async_execution", "output_json", "output_pydantic", "response_model",
    "callback", "config", "create_directory", "markdown", "converter_cls",
    "max_retries", "input_files", "security_config",
    "allow_crewai_trigger_context", "prompt_context", "id",
}  # fmt: skip
TYPED_IGNORED: dict[str, type] = {
    **dict.fromkeys(
        ("verbose", "cache", "async_execution", "allow_code_execution", "memory", "multimodal",
         "respect_context_window", "use_system_prompt", "reasoning", "inject_date", "markdown",
         "create_directory", "planning", "allow_crewai_trigger_context"),
        bool,
    ),
    **dict.fromkeys(("max_retry_limit", "guardrail_max_retries", "max_retries", "max_reasoning_attempts"), int),
}  # fmt: skip
"""Keys crews leaves out, checked as CrewAI checks them: a value CrewAI refuses is refused here too."""
_WHY = {
    "async_execution": "use `process: parallel` to run independent tasks at once",
    "tools": "give the tools to the task's agent",
    "output_json": "give the model in crew.py (Task(output_json=Model)), or use output_schema (a JSON schema)",
    "output_pydantic": "give the model in crew.py (Task(output_pydantic=Model)), or use output_schema",
    "response_model": "use output_schema (a JSON schema)",
}

LIMITED = {
    "guardrail": "it is checked only by `engine: crewai` roles (CrewAI's LLM guardrail); "
    "other engines use the answer unchecked",
    "human_input": "only `engine: crewai` roles ask a person (through the approval API); give the task an "
    "agent",
    "output_file": "crews writes no files from a crew file: the output is in the job's result (`crews status`)",
    "max_rpm": "only `engine: crewai` roles keep to it (CrewAI's own rate limit)",
    "allow_delegation": "only the manager of a hierarchical crew delegates; the coordinator plans every "
    "other step",
}
"""Keys crews keeps whose CrewAI behaviour it has only in part: each is warned about by name when set."""


def no_time_limit(roles: dict[str, Any]) -> list[Problem]:
    """CrewAI accepts a ``max_execution_time`` of 0 or less; crews has no such limit: it is left out."""
    warned = []
    for key, role in roles.items():
        limit = role.get("max_execution_time") if isinstance(role, dict) else None
        if isinstance(limit, int | float) and not isinstance(limit, bool) and limit <= 0:
            del role["max_execution_time"]
            message = f"'max_execution_time' is {limit:g}, not a time limit: left out (the step has none)"
            warned.append(Problem((key, "max_execution_time"), message, at_key=True))
    return warned


def crewai_required(roles: dict[str, Any]) -> list[Problem]:
    """What CrewAI's ``Agent`` requires and crews would default: a backstory."""
    return [
        Problem(
            (key, "backstory"),
            "CrewAI requires a backstory for every agent: add `backstory:` (it may be empty)",
        )
        for key, role in roles.items()
        if isinstance(role, dict) and "backstory" not in role
    ]


def at_least_one_iteration(roles: dict[str, Any]) -> list[Problem]:
    """CrewAI accepts ``max_iter`` below 1 (it still makes one LLM call); crews runs 1."""
    warned = []
    for key, role in roles.items():
        limit = role.get("max_iter") if isinstance(role, dict) else None
        if isinstance(limit, int | float) and not isinstance(limit, bool) and limit < 1:
            role["max_iter"] = 1
            message = f"'max_iter' is {limit:g}: CrewAI still makes one LLM call, so crews uses max_iter 1"
            warned.append(Problem((key, "max_iter"), message, at_key=True))
    return warned


def keep(
    value: Any, known: set[str], ignored: set[str], path: tuple[str]
) -> tuple[Any, list[Problem], list[Problem]]:
    """An entry's keys that crews knows, the unknown ones, and the CrewAI-only ones left out."""
    if not isinstance(value, dict):
        return value, [], []  # validation says what is wrong with it
    kept, wrong, left_out = {}, [], []
    for key, item in value.items():
        if key in LIMITED and key in known:
            kept[key] = item
            if item:
                left_out.append(Problem((*path, key), f"'{key}' is kept, but {LIMITED[key]}", at_key=True))
        elif key in known:
            kept[key] = item
        elif key in ignored and not crewai_type_ok(key, item):
            kind = "true or false" if TYPED_IGNORED[key] is bool else "a whole number"
            wrong.append(Problem((*path, key), f"'{key}' must be {kind}, as CrewAI requires", at_key=True))
        elif key in ignored:
            why = _WHY.get(key, "left out")
            left_out.append(Problem((*path, key), f"'{key}' has no crews equivalent yet: {why}", at_key=True))
        else:
            message = f"unknown field '{key}'" + suggest(key, sorted(known | ignored))
            wrong.append(Problem((*path, key), message, at_key=True))
    return kept, wrong, left_out


def crewai_type_ok(key: str, value: Any) -> bool:
    """Whether CrewAI's model (pydantic, lax) would take ``value`` for ``key``."""
    kind = TYPED_IGNORED.get(key)
    if kind is None or value is None:
        return True
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


def max_tokens_into_llm(agent: Any) -> Any:
    """CrewAI's per-agent answer limit is the crews role's ``llm.max_tokens``."""
    if isinstance(agent, dict) and "max_tokens" in agent:
        limit, llm = agent.pop("max_tokens"), agent.get("llm")
        agent["llm"] = {**({"model": llm} if isinstance(llm, str) else llm or {}), "max_tokens": limit}
    return agent
