"""``python -m bench`` (``make bench``): run every benchmark, print the table, write RESULTS.md and results.json.

    python -m bench                 # the full run (about 5 minutes, plus CrewAI's install the first time)
    python -m bench --quick         # a smoke run with tiny sizes; writes nothing unless --out is given
    python -m bench --only overhead --only coldstart
    python -m bench --no-crewai     # skip the CrewAI baseline (and its install)
    python -m bench --vllm          # also: 8 demo jobs vs 8 direct request chains on the local vLLM
    make bench ARGS=--vllm          # the same through make

Sizes are chosen so that ``make bench`` from a fresh clone, CrewAI's install
included, ends within 10 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import coldstart, efficiency, overhead, stepcost, throughput, vllm_batching
from bench.console import say
from bench.machine import describe
from bench.report import HERE, Results, print_table, write

SECTIONS = ("overhead", "throughput", "efficiency", "coldstart", "stepcost")


@dataclass(frozen=True)
class Sizes:
    overhead_jobs: int
    overhead_warmup: int
    throughput_jobs: tuple[int, ...]
    workers_per_role: tuple[int, ...]
    worker_concurrency: int
    throughput_timeout_s: float
    throughput_rounds: int
    llm_latency_s: float
    llm_concurrency: int
    efficiency_jobs: tuple[int, ...]
    coldstart_runs: int
    stepcost_steps: int
    vllm_jobs: int = 8
    vllm_rounds: int = 2


FULL = Sizes(
    overhead_jobs=150,
    overhead_warmup=3,
    throughput_jobs=(300, 300, 300),
    workers_per_role=(1, 2, 4),
    worker_concurrency=4,
    throughput_timeout_s=150.0,
    throughput_rounds=2,
    llm_latency_s=0.5,
    llm_concurrency=8,
    efficiency_jobs=(8, 32),
    coldstart_runs=5,
    stepcost_steps=40,
)
QUICK = Sizes(
    overhead_jobs=5,
    overhead_warmup=1,
    throughput_jobs=(60, 60),
    workers_per_role=(1, 2),
    worker_concurrency=4,
    throughput_timeout_s=60.0,
    throughput_rounds=1,
    llm_latency_s=0.2,
    llm_concurrency=4,
    efficiency_jobs=(4,),
    coldstart_runs=2,
    stepcost_steps=5,
    vllm_jobs=8,
    vllm_rounds=1,
)


async def run_all(sizes: Sizes, sections: tuple[str, ...], *, crewai: bool, vllm: bool = False) -> Results:
    results = Results(machine=describe(), config=asdict(sizes) | {"crewai": crewai, "vllm": vllm})
    begin = time.perf_counter()
    if "overhead" in sections:
        say(
            f"1/5 overhead: {sizes.overhead_jobs} jobs one at a time, crews and CrewAI in alternating chunks ..."
        )
        results.overhead = await overhead.run(sizes.overhead_jobs, sizes.overhead_warmup, crewai=crewai)
        o = results.overhead
        say(f"    crews {o.crews_ms_per_step:.2f} ms/step, CrewAI {o.crewai_ms_per_step or float('nan'):.2f}")
    if "throughput" in sections:
        say(
            f"2/5 throughput: {sizes.throughput_jobs} jobs with {sizes.workers_per_role} workers per role, "
            f"{sizes.throughput_rounds} round(s) in alternating order ..."
        )
        results.throughput = await throughput.run(
            sizes.throughput_jobs,
            sizes.workers_per_role,
            worker_concurrency=sizes.worker_concurrency,
            timeout_s=sizes.throughput_timeout_s,
            rounds=sizes.throughput_rounds,
        )
        for r in results.throughput:
            say(f"    {r.workers_per_role}/role: {r.steps_per_s:.0f} steps/s, {r.lost} lost")
    if "efficiency" in sections:
        say(
            f"3/5 LLM-bound: L={sizes.llm_latency_s} s, C={sizes.llm_concurrency}, N={sizes.efficiency_jobs} ..."
        )
        results.efficiency = await efficiency.run(
            sizes.llm_latency_s, sizes.llm_concurrency, sizes.efficiency_jobs
        )
        for e in results.efficiency:
            say(f"    N={e.jobs}: {e.run.wall_s:.2f} s for {e.ideal_s:.2f} s ideal ({e.ratio:.3f})")
    if "coldstart" in sections:
        say(f"4/5 cold start: {sizes.coldstart_runs} starts of a native worker ...")
        results.coldstart = coldstart.run(sizes.coldstart_runs)
    if "stepcost" in sections:
        say(f"5/5 CPU per step, handler by handler: {sizes.stepcost_steps} steps in this process ...")
        results.stepcost = await stepcost.run(sizes.stepcost_steps)
    if vllm:
        say(f"6 vLLM batching: {sizes.vllm_jobs} demo jobs vs {sizes.vllm_jobs} direct chains, "
            f"{sizes.vllm_rounds} round(s) each, on the local vLLM (starts in ~30 s) ...")  # fmt: skip
        results.vllm = await vllm_batching.run(sizes.vllm_jobs, sizes.vllm_rounds)
        v = results.vllm
        say(f"    crews {v.crews_tokens_per_s or 0:.1f} tokens/s, direct {v.direct_tokens_per_s or 0:.1f} "
            f"({v.error or 'ok'})")  # fmt: skip
    results.elapsed_s = time.perf_counter() - begin
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description="crews benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--only", action="append", choices=SECTIONS, help="run only this part (repeatable)")
    parser.add_argument("--no-crewai", action="store_true", help="skip the CrewAI baseline")
    parser.add_argument("--vllm", action="store_true", help="also the batching run on the local vLLM (slow)")
    parser.add_argument("--out", type=Path, help="where to write RESULTS.md and results.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sections = tuple(args.only or SECTIONS)
    results = asyncio.run(run_all(sizes, sections, crewai=not args.no_crewai, vllm=args.vllm))
    print_table(results)
    out = args.out or (None if args.quick or args.only else HERE)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write(results, out)
        say(f"wrote {out / 'RESULTS.md'} and {out / 'results.json'} ({results.elapsed_s:.0f} s)")


if __name__ == "__main__":
    main()
