"""The benchmarks' figures as rows against their targets: a terminal table, ``results.json`` and ``RESULTS.md``."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.backlog import BacklogRun
from bench.coldstart import ColdStart
from bench.efficiency import Efficiency
from bench.overhead import Overhead
from bench.stepcost import per_step
from bench.vllm_batching import VLLMBatching

HERE = Path(__file__).resolve().parent
FINDINGS = HERE / "FINDINGS.md"
FINDINGS_MARK = "<!-- findings: bench/FINDINGS.md -->"
COLUMNS = ("benchmark", "figure", "crews", "baseline", "ratio", "target", "met")


@dataclass
class Results:
    machine: dict[str, Any]
    config: dict[str, Any]
    overhead: Overhead | None = None
    throughput: list[BacklogRun] = field(default_factory=list)
    efficiency: list[Efficiency] = field(default_factory=list)
    coldstart: ColdStart | None = None
    stepcost: dict[str, float] | None = None
    vllm: VLLMBatching | None = None
    elapsed_s: float = 0.0


def _n(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "NO")


def _overhead_rows(o: Overhead) -> list[tuple[str, ...]]:
    base = _n(o.crewai_ms_per_step) + (f" (CrewAI {o.crewai_version})" if o.crewai_version else "")
    if o.crewai_error:
        base = o.crewai_error[:60]
    ok = None if o.ratio is None else o.ratio <= 0.4
    return [
        ("1 overhead", f"ms/step, {o.jobs} jobs one at a time", _n(o.crews_ms_per_step, 2), base,
         _n(o.ratio, 3), "≤ 0.4 x CrewAI", _met(ok)),
        ("", "  same, less the LLM's HTTP round trip", _n(o.crews_ms_per_step - o.llm_round_trip_ms, 2),
         _n(o.crewai_ms_per_step, 2), _n(o.ratio_without_llm, 3), "", ""),
        ("", "  job p50 / p95 ms", f"{_n(o.crews_job_p50_ms)} / {_n(o.crews_job_p95_ms)}",
         _n(o.crewai_job_p50_ms), "", "", ""),
        ("", "  LLM round trip ms (in crews' figure)", _n(o.llm_round_trip_ms, 2), "0 (in-process)", "", "", ""),
        *_floor_rows(o),
    ]  # fmt: skip


def _floor_rows(o: Overhead) -> list[tuple[str, ...]]:
    f = o.floor
    if f is None:
        return []
    cpu, wall = o.floor_cpu_ratio, o.floor_wall_ratio
    return [
        ("1b floor", "CPU ms/step, every process but the driver", _n(o.crews_cpu_ms_per_step, 2),
         f"{_n(f.cpu_ms_per_step, 2)} (floor)", _n(cpu, 2), "≤ 4 ms and ≤ 2 x floor",
         _met(None if cpu is None else cpu <= 2 and o.crews_cpu_ms_per_step <= 4)),
        ("", "  wall ms/step, jobs one at a time", _n(o.crews_ms_per_step, 2), f"{_n(f.ms_per_step, 2)} (floor)",
         _n(wall, 2), "", ""),
    ]  # fmt: skip


def _throughput_rows(runs: list[BacklogRun]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    first = runs[0].steps_per_s if runs else None
    for i, r in enumerate(runs):
        rows.append((
            "2 throughput" if i == 0 else "",
            f"steps/s, {r.workers_per_role} worker(s)/role, {r.jobs // r.rounds} jobs in flight x {r.rounds}",
            _n(r.steps_per_s), f"{_n(first)} (1 worker/role)", _n(r.steps_per_s / first if first else None, 2),
            "≥ 1 worker/role" if i else "", _met(r.steps_per_s >= first) if i and first else "",
        ))  # fmt: skip
        rows.append(("", "  jobs lost (not completed)", str(r.lost), "", "", "0", _met(r.lost == 0)))
    return rows


def _efficiency_rows(runs: list[Efficiency]) -> list[tuple[str, ...]]:
    return [
        ("3 LLM-bound" if i == 0 else "",
         f"wall / ideal, N={e.jobs}, L={e.llm_latency_s:g} s, C={e.llm_concurrency}",
         f"{_n(e.run.wall_s, 2)} s", f"{_n(e.ideal_s, 2)} s ideal", _n(e.ratio, 3), "≤ 1.05",
         _met(e.ratio <= 1.05 and e.run.lost == 0))
        for i, e in enumerate(runs)
    ]  # fmt: skip


def _coldstart_rows(c: ColdStart) -> list[tuple[str, ...]]:
    return [
        ("4 cold start", f"native worker to ready, s (median of {c.runs})", _n(c.ready_s, 3),
         f"{_n(c.python_start_s, 3)} (python -c pass)", _n(c.ready_s / c.python_start_s, 1), "≤ 0.5 s",
         _met(c.ready_s <= 0.5)),
        ("", "  RSS at ready, MB", _n(c.rss_ready_mb), "", "", "", ""),
        ("", "  RSS working (runtime loaded), MB", _n(c.rss_working_mb), "", "", "≤ 80 MB",
         _met(c.rss_working_mb <= 80)),
    ]  # fmt: skip


def _stepcost_rows(found: dict[str, float]) -> list[tuple[str, ...]]:
    steps = per_step(found)
    return [
        ("5 CPU/step" if i == 0 else "", f"{name}, µs CPU per step (in-process, handler by handler)",
         _n(value, 0), "", "", "", "")
        for i, (name, value) in enumerate(steps.items())
    ]  # fmt: skip


def _vllm_rows(v: VLLMBatching) -> list[tuple[str, ...]]:
    if v.error:
        return [
            ("6 vLLM batching", "output tokens/s, demo jobs vs direct", "—", v.error[:60], "—", "≥ 0.9", "—")
        ]
    r = v.batching_ratio
    return [
        ("6 vLLM batching", f"output tokens/s, {v.jobs} demo jobs at once vs {v.jobs} direct chains",
         _n(v.crews_tokens_per_s), f"{_n(v.direct_tokens_per_s)} (direct)", _n(r, 3), "≥ 0.9 x direct",
         _met(None if r is None else r >= 0.9 and v.crews_lost == 0)),
        ("", f"  output tokens / wall s over {v.rounds} round(s) each", f"{v.crews_tokens} / {_n(v.crews_wall_s)}",
         f"{v.direct_tokens} / {_n(v.direct_wall_s)}", "", "", ""),
    ]  # fmt: skip


def rows(results: Results) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    if results.overhead is not None:
        found += _overhead_rows(results.overhead)
    found += _throughput_rows(results.throughput)
    found += _efficiency_rows(results.efficiency)
    if results.coldstart is not None:
        found += _coldstart_rows(results.coldstart)
    if results.stepcost is not None:
        found += _stepcost_rows(results.stepcost)
    if results.vllm is not None:
        found += _vllm_rows(results.vllm)
    return found


def print_table(results: Results) -> None:
    table = Table(title=f"crews benchmarks — {results.machine['date']}", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="right" if column in ("crews", "ratio") else "left")
    for row in rows(results):
        table.add_row(*row)
    Console(width=160).print(table)


def _cpu_lines(results: Results) -> list[str]:
    """Where the CPU went in each backlog run: seconds per process group and per step."""
    lines = ["| run | " + " | ".join(("nats", "redis", "llm", "coordinator", "workers", "driver")) + " |"]
    lines.append("|---" * 7 + "|")
    runs = [(f"throughput, {r.workers_per_role}/role", r) for r in results.throughput]
    runs += [(f"LLM-bound, N={e.jobs}", e.run) for e in results.efficiency]
    for name, r in runs:
        steps = max(1, r.completed * 3)
        cells = [f"{r.cpu_s.get(k, 0):.2f} s ({r.cpu_s.get(k, 0) / steps * 1000:.2f} ms/step)"
                 for k in ("nats", "redis", "llm", "coordinator", "workers", "driver")]  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def markdown(results: Results) -> str:
    m = results.machine
    out = [
        "# crews benchmarks: latest run",
        "",
        "Written by `make bench` (`python -m bench`); the figures below are from the last run. Ratios are",
        "against baselines measured in the same run on the same machine. Findings and fixes: at the end.",
        "",
        "## Machine",
        "",
        *(f"- **{key}**: {value}" for key, value in m.items()),
        f"- **run took**: {results.elapsed_s:.0f} s; configuration: `{json.dumps(results.config)}`",
        "",
        "## Figures",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows(results)),
        "",
        "## CPU by process (seconds during the measured window; per completed step)",
        "",
        *_cpu_lines(results),
        "",
        *_stepcost_lines(results),
        FINDINGS_MARK,
        "",
    ]
    return "\n".join(out) + _findings()


def _stepcost_lines(results: Results) -> list[str]:
    if not results.stepcost:
        return []
    lines = ["## CPU per call, handler by handler (`python -m bench.stepcost`)", ""]
    lines += ["| handler | µs CPU (median) |", "|---|---|"]
    lines += [f"| {name} | {value:,.0f} |" for name, value in results.stepcost.items()]
    return [*lines, ""]


def _findings() -> str:
    return FINDINGS.read_text() if FINDINGS.exists() else ""


def refresh_findings(path: Path = HERE / "RESULTS.md") -> None:
    """Replace the findings at the end of ``path`` with the current FINDINGS.md (the figures stay)."""
    text = path.read_text()
    head, mark, _ = text.partition(FINDINGS_MARK)
    if mark:
        path.write_text(head + mark + "\n\n" + _findings())


def to_json(results: Results) -> dict[str, Any]:
    """Everything measured, plus the stable keys: ``overhead.ratio``, ``floor.cpu_ratio``,
    ``floor.wall_ratio``, ``throughput[].steps_per_s``, ``efficiency[].ratio``, ``vllm.batching_ratio``."""
    data = asdict(results)
    if results.overhead is not None:
        o = results.overhead
        data["overhead"]["ratio"] = o.ratio
        data["overhead"]["ratio_without_llm"] = o.ratio_without_llm
        data["overhead"]["crews_cpu_ms_per_step"] = o.crews_cpu_ms_per_step
        floor = data["overhead"].pop("floor")
        if o.floor is not None:
            data["floor"] = floor | {
                "ms_per_step": o.floor.ms_per_step,
                "job_p50_ms": o.floor.job_p50_ms,
                "cpu_ms_per_step": o.floor.cpu_ms_per_step,
                "crews_ms_per_step": o.crews_ms_per_step,
                "crews_cpu_ms_per_step": o.crews_cpu_ms_per_step,
                "cpu_ratio": o.floor_cpu_ratio,
                "wall_ratio": o.floor_wall_ratio,
            }
    for run, item in zip(results.throughput, data["throughput"], strict=True):
        item["steps_per_s"] = run.steps_per_s
    for eff, item in zip(results.efficiency, data["efficiency"], strict=True):
        item["ratio"] = eff.ratio
        item["run"]["steps_per_s"] = eff.run.steps_per_s
    if results.vllm is not None:
        v = results.vllm
        data["vllm"].pop("shapes")
        data["vllm"] |= {
            "crews_tokens_per_s": v.crews_tokens_per_s,
            "direct_tokens_per_s": v.direct_tokens_per_s,
            "batching_ratio": v.batching_ratio,
        }
    else:
        data.pop("vllm")
    return data


def write(results: Results, directory: Path = HERE) -> None:
    """``results.json`` and ``RESULTS.md`` (figures, then FINDINGS.md) in ``directory``."""
    (directory / "results.json").write_text(json.dumps(to_json(results), indent=2) + "\n")
    (directory / "RESULTS.md").write_text(markdown(results))


if __name__ == "__main__":
    refresh_findings()  # python -m bench.report: after editing FINDINGS.md
