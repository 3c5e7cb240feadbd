"""Rounds and calls a class needs to fill its quota: asking for what is missing, or for missing / valid share.

A model of synthesis rounds (one class, one example per call, each answer valid with probability
p, drawn independently): round 1 sends the plan (the quota); each next round asks either for
exactly what is missing (judgeforge before issue 15's fourth round) or for `examples_to_ask`
(the code's own function), within `call_budget`. No LLM runs; it shows what the policy costs in
calls and saves in rounds, which the real runs of benchmarks/local_speed.py only sample.

    python benchmarks/follow_up_rounds.py [--trials 4000] [--attempts 3]
"""

from __future__ import annotations

import argparse
import random
import statistics

from judgeforge.pipelines.synthesis.generation import call_budget, examples_to_ask

CASES = ((8, 0.44), (20, 0.44), (50, 0.44), (8, 0.3), (3, 0.5), (100, 0.7), (8, 0.9), (8, 0.1))


def fill(
    quota: int, p: float, attempts: float, divide: bool, rng: random.Random
) -> tuple[int, int, int, int]:
    """Return (rounds, calls, surplus, missing) of one simulated class."""
    budget = call_budget(quota, 1, attempts)
    calls = asked = quota
    valid = sum(rng.random() < p for _ in range(quota))
    kept, surplus, rounds = min(valid, quota), max(0, valid - quota), 1
    while kept < quota and calls < budget:
        missing = quota - kept
        wanted = examples_to_ask(missing, valid, asked, attempts) if divide else missing
        count = min(wanted, budget - calls)
        got = sum(rng.random() < p for _ in range(count))
        calls, asked, valid, rounds = calls + count, asked + count, valid + got, rounds + 1
        surplus += max(0, got - missing)
        kept = min(quota, kept + got)
    return rounds, calls, surplus, quota - kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument("--attempts", type=float, default=3.0, help="max_attempts_per_example")
    args = parser.parse_args()
    print("| quota | valid share | policy | rounds | calls | surplus | missing |")
    print("|---|---|---|---|---|---|---|")
    for quota, p in CASES:
        for divide, name in ((False, "exactly what is missing"), (True, "missing / share")):
            rng = random.Random(0)
            runs = [fill(quota, p, args.attempts, divide, rng) for _ in range(args.trials)]
            means = [statistics.mean(run[i] for run in runs) for i in range(4)]
            print(f"| {quota} | {p} | {name} | " + " | ".join(f"{m:.2f}" for m in means) + " |")


if __name__ == "__main__":
    main()
