"""judgeforge's request engine and bespokelabs-curator on one workload against one loopback server.

efficiency = calls/s ÷ (concurrency / latency), one example per call, both clients against the
same server process with the same latency; runs alternate between the two clients.

    python3 -m venv /tmp/curator-venv && /tmp/curator-venv/bin/pip install bespokelabs-curator==0.1.31
    .venv/bin/python benchmarks/curator_comparison.py [--calls 6400] [--concurrency 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from engine_efficiency import measure
from loopback import control, loopback_server

ROOT = Path(__file__).resolve().parents[1]


def curator_efficiency(
    python: str, base_url: str, calls: int, concurrency: int, latency: float
) -> float:
    """Run the curator worker in its own interpreter and return its efficiency."""
    control(base_url, "reset")
    finished = subprocess.run(
        [
            python,
            str(ROOT / "benchmarks" / "curator_worker.py"),
            base_url,
            str(calls),
            str(concurrency),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    result = json.loads(finished.stdout.strip().splitlines()[-1])
    if result["answers"] != calls:
        raise RuntimeError(f"curator returned {result['answers']} of {calls} answers")
    return calls / result["seconds"] / (concurrency / latency)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=6400)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--curator-python", default="/tmp/curator-venv/bin/python")
    args = parser.parse_args()
    ours, theirs = [], []
    with loopback_server(args.latency) as base_url, tempfile.TemporaryDirectory() as cache:
        for repeat in range(args.repeats):
            ours.append(
                measure(
                    base_url, args.concurrency, args.calls, args.latency, Path(cache), f"r{repeat}"
                ).efficiency
            )
            theirs.append(
                curator_efficiency(
                    args.curator_python, base_url, args.calls, args.concurrency, args.latency
                )
            )
    print(
        json.dumps(
            {
                "calls": args.calls,
                "concurrency": args.concurrency,
                "latency_s": args.latency,
                "judgeforge": {
                    "runs": [round(x, 3) for x in ours],
                    "median": round(statistics.median(ours), 3),
                },
                "curator": {
                    "runs": [round(x, 3) for x in theirs],
                    "median": round(statistics.median(theirs), 3),
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
