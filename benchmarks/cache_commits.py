"""SQLite response-cache cost per answer when answers are committed alone or in batches (not a test).

    PYTHONPATH=src .venv/bin/python benchmarks/cache_commits.py [--repeats 3] [--answers 4096]

The engine commits the answers that arrive within COMMIT_WINDOW_SECONDS (5 ms) together: about
6 per commit at 1,280 answers/s (concurrency 256, 200 ms latency), one per commit before.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from judgeforge.llm.cache import ResponseCache

RECORD = {"text": "x" * 200, "input_tokens": 10, "output_tokens": 20, "finish_reason": "stop"}


def microseconds_per_answer(batch: int, answers: int, tag: str) -> float:
    """Store `answers` records `batch` at a time into a fresh cache; cost per answer."""
    with tempfile.TemporaryDirectory(prefix="jf-commits-") as folder:
        cache = ResponseCache(Path(folder) / "cache.sqlite")
        started = time.perf_counter()
        for first in range(0, answers, batch):
            cache.put_responses(
                "p", "m", {f"{tag}-{i}": RECORD for i in range(first, first + batch)}
            )
        seconds = time.perf_counter() - started
        cache.close()
    return seconds / answers * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--answers", type=int, default=4096)
    args = parser.parse_args()
    for batch in (1, 6, 64):
        runs = [
            microseconds_per_answer(batch, args.answers, f"{batch}-{r}")
            for r in range(args.repeats)
        ]
        print(
            f"{batch:>3} answers per commit: {statistics.median(runs):6.1f} us per answer (median; runs "
            f"{[round(run, 1) for run in runs]})",
            flush=True,
        )


if __name__ == "__main__":
    main()
