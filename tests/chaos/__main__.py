"""``python -m tests.chaos``: a seeded chaos run against processes of its own, then its figures.

    python -m tests.chaos --jobs 200 --seed 7 --kills 24 --duration 600

Exits 1 when a job was lost, stuck or ended otherwise than it must, a step
had two results, a side effect was applied twice or is missing, or a deadline
was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from pathlib import Path

from tests.chaos.runner import ChaosOptions, run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description="a seeded chaos run against processes of its own, then its figures",
    )
    defaults = ChaosOptions()
    parser.add_argument("--jobs", type=int, default=defaults.jobs, help="ledger jobs (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--kills", type=int, default=defaults.kills, help="kills in all (default %(default)s)"
    )
    parser.add_argument(
        "--duration", type=float, default=defaults.duration_s, help="seconds until an unfinished job is stuck"
    )
    parser.add_argument("--in-flight", type=int, default=defaults.in_flight, help="unfinished jobs at once")
    parser.add_argument("--workers-per-role", type=int, default=defaults.workers_per_role)
    parser.add_argument(
        "--outage",
        type=float,
        default=defaults.outage_s,
        help="seconds a killed server stays down once noticed",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where servers, logs and the ledger go")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each kill and retry")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    options = ChaosOptions(
        jobs=args.jobs,
        seed=args.seed,
        kills=args.kills,
        duration_s=args.duration,
        in_flight=args.in_flight,
        workers_per_role=args.workers_per_role,
        outage_s=args.outage,
        workdir=args.workdir or Path(tempfile.mkdtemp(prefix="crews-chaos-")),
    )
    report = asyncio.run(run_chaos(options))
    print("\n".join(report.lines()))
    print(f"logs, ledger and stores: {options.workdir}")
    for problem in report.problems():
        print(f"PROBLEM: {problem}")
    return 0 if not report.problems() else 1


if __name__ == "__main__":
    sys.exit(main())
