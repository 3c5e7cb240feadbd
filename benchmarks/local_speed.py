"""Synthesis speed on the embedded SmolLM2, this code beside an older checkout, on three row shapes.

Workloads (the same seed files for both sides, written to a temporary folder):
  a  one-sentence rows: the demo metric and data/01_raw/customer_messages.csv;
  b  rag rows shaped like examples/data/rag_faithfulness.jsonl, contexts lengthened to ~300 chars
     (each joined with the next row's context), with examples/binary_rag_faithfulness.yaml;
  c  ~1,500-character single texts: demo messages of one class joined, with the demo metric.
  j  the local judge labelling workload (b)'s seed rows (`judge_rows`, one retry) with a
     faithfulness prompt; its "examples" are rows given a valid label.
Each run is its own process (PYTHONPATH picks the code), timed after the model is loaded (and,
where the code has them, its worker processes started: `warm_up_seconds` is that load), with a
fresh response cache; runs alternate before/after so machine load hits both alike. CPU seconds
include the worker processes'.

    python benchmarks/local_speed.py --before /path/to/old/src [--examples 16] [--repeats 3]
        [--workloads a,b,c] [--threads 1] [--timeout 900]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = {
    "a": "one-sentence rows",
    "b": "rag rows, ~300-char contexts",
    "c": "~1,500-char texts",
    "j": "local judge labelling rag rows",
}
JUDGE_PROMPT = (
    "Decide whether the response is faithful to the context: a faithful response states only "
    "what the context supports and adds no facts of its own.\nquery: {query}\ncontext: "
    "{context}\nresponse: {response}"
)


def demo_parameters() -> dict:
    """conf/base parameters merged into one run config."""
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


def write_workload(name: str, folder: Path) -> Path:
    """Write workload `name`'s run config (and seed file) under `folder`; return the config path."""
    if name in ("b", "j"):
        raw = yaml.safe_load((ROOT / "examples" / "binary_rag_faithfulness.yaml").read_text())
        rows = pd.read_json(ROOT / "examples" / "data" / "rag_faithfulness.jsonl", lines=True)
        following = rows["context"].shift(-1, fill_value=rows["context"].iloc[0])
        rows["context"] = [_cut(f"{a} {b}", 340) for a, b in zip(rows["context"], following)]
        seeds = folder / "rag.jsonl"
        rows.to_json(seeds, orient="records", lines=True)
    else:
        raw = demo_parameters()
        rows = pd.read_csv(ROOT / "data" / "01_raw" / "customer_messages.csv")
        if name == "c":
            rows = long_texts(rows, 1_500, count=120)
        seeds = folder / f"{name}.csv"
        rows.to_csv(seeds, index=False)
    raw["data_generation"]["source_data"]["dataset"]["csv"]["file_path"] = str(seeds)
    if name == "j":
        raw["data_generation"]["metric"]["llmaj_source_prompt"] = JUDGE_PROMPT
    config = folder / f"{name}.yaml"
    config.write_text(yaml.safe_dump(raw))
    return config


def _cut(text: str, limit: int) -> str:
    """`text` cut after its last sentence that ends within `limit` characters."""
    if len(text) <= limit:
        return text
    end = text.rfind(". ", 0, limit)
    return text[: end + 1] if end > 0 else text[:limit]


def long_texts(rows: pd.DataFrame, length: int, count: int) -> pd.DataFrame:
    """`count` texts of about `length` characters, each made of messages of one class."""
    rng = np.random.default_rng(0)
    labels = sorted(rows["label"].unique())
    out = []
    for index in range(count):
        label = labels[index % len(labels)]
        pool = rows.loc[rows["label"] == label, "text"].tolist()
        parts: list[str] = []
        for position in rng.permutation(len(pool)):
            if sum(len(p) + 1 for p in parts) >= length:
                break
            parts.append(pool[position])
        out.append({"row_id": index, "text": " ".join(parts), "label": label})
    return pd.DataFrame(out)


def measure(config_path: Path, examples: int, threads: int) -> dict:
    """One synthesis run of `examples` examples in this process (the code on PYTHONPATH)."""
    import torch

    from judgeforge.config import validate_run_config
    from judgeforge.datasets.seed_data import read_table_file
    from judgeforge.llm import build_llm_client
    from judgeforge.pipelines.ingestion.nodes import split_seed_rows, validate_seed_rows
    from judgeforge.pipelines.synthesis.nodes import generate_synthetic_examples, plan_class_quotas
    from judgeforge.pipelines.synthesis.plan import build_generation_plan

    if threads:
        torch.set_num_threads(threads)
    raw = yaml.safe_load(config_path.read_text())
    raw["data_generation"]["generation"]["total_examples"] = examples
    config = validate_run_config(raw).data_generation
    columns, metric, sampling = (
        config.source_data.dataset.columns,
        config.metric,
        config.source_data.sampling,
    )
    seeds = read_table_file(config.source_data.dataset.csv.file_path, {})
    clean, _ = validate_seed_rows(seeds, columns, metric, config.source_data.max_text_chars)
    enhancement, holdout = split_seed_rows(clean, sampling, columns.label)
    quotas = plan_class_quotas(holdout, metric, config.generation, columns)
    settings = (metric, config.llm, config.generation, config.diversity, columns, sampling)
    plan = build_generation_plan(quotas, enhancement, *settings)
    with tempfile.TemporaryDirectory() as cache_dir:
        client = build_llm_client(
            "local", cache_path=Path(cache_dir) / "c.sqlite", show_progress=False
        )
        warm_up = warm_up_seconds(client)
        prefilled_before = getattr(client.chat, "prefilled_tokens", None)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        synthetic, rejects, stats, _ = generate_synthetic_examples(
            plan, quotas, enhancement, holdout, *settings, client
        )
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
        output_tokens = client.usage.output_tokens
        prompt_tokens = client.usage.input_tokens
        # prompt tokens fed to the model (shared system turns once), where the code counts them;
        # the warm-up's are not the run's
        prefilled = (
            None if prefilled_before is None else client.chat.prefilled_tokens - prefilled_before
        )
        client.close()
    # newer code keeps its surplus examples in the rejects table too
    surplus_rows = int((rejects["reason"] == "surplus").sum()) if len(rejects) else 0
    judged = len(synthetic) + len(rejects) - surplus_rows + stats["surplus_examples"]
    return {
        "examples": len(synthetic),
        "calls": sum(stats["calls_per_class"].values()),
        "rounds": stats["rounds"],
        "valid_share": round((len(synthetic) + stats["surplus_examples"]) / judged, 3)
        if judged
        else 0.0,
        "rejects": rejects["reason"].value_counts().to_dict() if len(rejects) else {},
        "seconds": round(elapsed, 1),
        "warm_up_seconds": round(warm_up, 1),
        "examples_per_s": round(len(synthetic) / elapsed, 3),
        "tokens_per_s": round(output_tokens / elapsed, 1),
        "cpu_seconds": round(cpu, 1),
        "examples_per_cpu_s": round(len(synthetic) / cpu, 3),
        "tokens_per_cpu_s": round(output_tokens / cpu, 1),
        "prompt_tokens": prompt_tokens,
        "prefilled_tokens": prefilled,
        # how long the written texts are beside the real ones (last feature: a rag row's response)
        "median_chars": _median_chars(synthetic, columns.features[-1]),
        "real_median_chars": _median_chars(seeds, columns.features[-1]),
    }


def warm_up_seconds(client) -> float:
    """Seconds to load the model: a job of one-token calls, long enough to start any worker processes."""
    from judgeforge.llm import LLMRequest

    started = time.perf_counter()
    # 16 calls a worker for the most workers the local provider starts by itself (4), so the
    # timed runs that follow are dealt to workers already running
    client.chat.generate_batch([LLMRequest.from_prompt("hi", max_tokens=1)] * 64)
    return time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU seconds of this process and of its live child processes (the local provider's workers)."""
    import psutil

    children = psutil.Process().children(recursive=True)
    return time.process_time() + sum(c.cpu_times().user + c.cpu_times().system for c in children)


def _median_chars(rows: pd.DataFrame, column: str) -> float | None:
    return float(rows[column].astype(str).str.len().median()) if len(rows) else None


def measure_judge(config_path: Path, rows: int, threads: int) -> dict:
    """The local judge labelling the first `rows` seed rows in this process (the code on PYTHONPATH)."""
    import torch

    from judgeforge.config import validate_run_config
    from judgeforge.datasets.seed_data import read_table_file
    from judgeforge.llm import build_llm_client
    from judgeforge.pipelines.labelling.judge import JudgeStatus, judge_rows

    if threads:
        torch.set_num_threads(threads)
    config = validate_run_config(yaml.safe_load(config_path.read_text())).data_generation
    seeds = read_table_file(config.source_data.dataset.csv.file_path, {}).head(rows)
    features = config.source_data.dataset.columns.features
    with tempfile.TemporaryDirectory() as cache_dir:
        client = build_llm_client(
            "local", cache_path=Path(cache_dir) / "c.sqlite", show_progress=False
        )
        warm_up_seconds(client)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        verdicts = judge_rows(client, config.metric, features, seeds.to_dict("records"), 1)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds() - cpu_started
        output_tokens = client.usage.output_tokens
        prompt_tokens = client.usage.input_tokens
        prefilled = getattr(client.chat, "prefilled_tokens", None)
        client.close()
    labelled = sum(v.status == JudgeStatus.OK for v in verdicts)
    return {
        "examples": labelled,
        "calls": sum(v.attempts for v in verdicts),
        "valid_share": round(labelled / len(verdicts), 3),
        "rejects": {},
        "seconds": round(elapsed, 1),
        "examples_per_s": round(labelled / elapsed, 3),
        "tokens_per_s": round(output_tokens / elapsed, 1),
        "cpu_seconds": round(cpu, 1),
        "examples_per_cpu_s": round(labelled / cpu, 3),
        "tokens_per_cpu_s": round(output_tokens / cpu, 1),
        "prompt_tokens": prompt_tokens,
        "prefilled_tokens": prefilled,
    }


def run_side(src: str, config_path: Path, examples: int, threads: int, timeout: int) -> dict | None:
    """`measure` in a fresh process with `src` first on PYTHONPATH; None when it ran past `timeout`."""
    env = {**os.environ, "PYTHONPATH": src, "HF_HUB_OFFLINE": "1", "KEDRO_DISABLE_TELEMETRY": "1"}
    command = [
        sys.executable,
        __file__,
        "--worker",
        str(config_path),
        "--examples",
        str(examples),
        "--threads",
        str(threads),
    ]
    try:
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, check=True
        )
    except subprocess.TimeoutExpired:
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="src folder of the code to compare against")
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workloads", default="a,b,c")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0: torch's default)"
    )
    parser.add_argument(
        "--timeout", type=int, default=900, help="seconds before a run counts as too slow"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker = measure_judge if args.worker.stem == "j" else measure
        print(json.dumps(worker(args.worker, args.examples, args.threads)))
        return
    sides = {"after": str(ROOT / "src")} | ({"before": args.before} if args.before else {})
    with tempfile.TemporaryDirectory() as folder:
        for name in args.workloads.split(","):
            config_path = write_workload(name, Path(folder))
            runs: dict[str, list[dict | None]] = {side: [] for side in sides}
            for _ in range(args.repeats):
                for side, src in sides.items():
                    runs[side].append(
                        run_side(src, config_path, args.examples, args.threads, args.timeout)
                    )
                    print(f"{name} {side}: {runs[side][-1]}", file=sys.stderr, flush=True)
            print(
                f"\n({name}) {WORKLOADS[name]}, {args.examples} examples, medians of {args.repeats}:"
            )
            for side, results in runs.items():
                print(f"  {side:>6}: {summary(results, args.timeout)}", flush=True)


def summary(results: list[dict | None], timeout: int) -> str:
    """Medians over runs (a run past the timeout counts as 0 examples/s).

    Per CPU-second figures are what one idle core would do: on a shared machine wall-clock
    rates fall with the load, CPU time barely moves (one torch thread per run).
    """
    finished = [r for r in results if r is not None]
    if not finished:
        return f"every run exceeded {timeout} s"

    def median(key: str) -> float:
        return statistics.median(r[key] if r else 0.0 for r in results)

    late = len(results) - len(finished)
    # generation runs have rounds and texts; the judge workload (j) has neither
    texts = (
        f", rounds {statistics.median(r['rounds'] for r in finished):g}; median text "
        f"{statistics.median(r['median_chars'] or 0 for r in finished):g} chars (real "
        f"{finished[0]['real_median_chars']:g})"
        if "rounds" in finished[0]
        else f"; wall {median('seconds'):.1f} s a run"
    )
    return (
        f"{median('examples_per_cpu_s'):.3f} examples/CPU-s, {median('tokens_per_cpu_s'):.1f} "
        f"tokens/CPU-s; wall {median('examples_per_s'):.3f} examples/s, "
        f"{median('tokens_per_s'):.1f} tokens/s; valid share "
        f"{statistics.median(r['valid_share'] for r in finished):.2f}; calls "
        f"{statistics.median(r['calls'] for r in finished):g}{texts}"
        f"{f', {late} run(s) past {timeout} s' if late else ''}"
    )


if __name__ == "__main__":
    main()
