"""Synthesis on the embedded SmolLM2 with the demo config: examples/s, tokens/s, valid-example rate.

Usage: python benchmarks/local_synthesis.py [--examples 32] [--batch-size 16]
Reads the demo seed CSV and conf/base parameters; caches nothing (a fresh cache per run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml

from judgeforge.config import validate_run_config
from judgeforge.datasets.seed_data import read_table_file
from judgeforge.llm import build_llm_client
from judgeforge.pipelines.ingestion.nodes import split_seed_rows, validate_seed_rows
from judgeforge.pipelines.synthesis.nodes import generate_synthetic_examples, plan_class_quotas
from judgeforge.pipelines.synthesis.plan import build_generation_plan

ROOT = Path(__file__).resolve().parents[1]


def base_parameters() -> dict:
    """Return conf/base parameters merged into one run config."""
    merged: dict = {}
    for path in sorted((ROOT / "conf" / "base").glob("parameters*.yml")):
        _merge(merged, yaml.safe_load(path.read_text()) or {})
    return merged


def _merge(into: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    raw = base_parameters()
    raw["data_generation"]["generation"]["total_examples"] = args.examples
    config = validate_run_config(raw).data_generation
    columns, metric = config.source_data.dataset.columns, config.metric
    seeds = read_table_file(str(ROOT / config.source_data.dataset.csv.file_path), {})
    clean, _ = validate_seed_rows(seeds, columns, metric)
    enhancement, holdout = split_seed_rows(clean, config.source_data.sampling, columns.label)
    quotas = plan_class_quotas(holdout, metric, config.generation, columns)

    with tempfile.TemporaryDirectory() as cache_dir:
        client = build_llm_client("local", local_batch_size=args.batch_size, cache_path=Path(cache_dir) / "c.sqlite", show_progress=False)
        client.chat.generate_batch([__import__("judgeforge.llm", fromlist=["LLMRequest"]).LLMRequest.from_prompt("hi", max_tokens=1)])  # load the model
        started = time.perf_counter()
        plan = build_generation_plan(
            quotas, enhancement, metric, config.llm, config.generation, config.diversity, columns, config.source_data.sampling
        )
        synthetic, rejects, stats, _ = generate_synthetic_examples(
            plan, quotas, enhancement, holdout, metric, config.llm, config.generation, config.diversity, columns,
            config.source_data.sampling, client,
        )
        elapsed = time.perf_counter() - started
        calls = sum(stats["calls_per_class"].values())
        result = {
            "examples_requested": args.examples,
            "examples_delivered": len(synthetic),
            "calls": calls,
            "valid_example_rate": round(len(synthetic) / calls, 3) if calls else 0.0,
            "rejects_by_reason": rejects["reason"].value_counts().to_dict(),
            "seconds": round(elapsed, 1),
            "examples_per_s": round(len(synthetic) / elapsed, 3),
            "output_tokens_per_s": round(client.usage.output_tokens / elapsed, 1),
            "batch_size": args.batch_size,
            "sample": synthetic["text"].head(8).tolist(),
        }
        client.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
