"""torch.compile (inductor, CPU) on the int8 SmolLM2 forward: decoding steps and judge scoring, per compile scope.

Scopes (each in its own process, so compiled code never leaks between them):
  eager    the code as it is (no compilation);
  linear   every `Int8Linear` compiled: per-token quantisation + `_int_mm` + rescaling fused;
  mlpnorm  every `LlamaMLP` (its three int8 linears and SiLU * up) and `LlamaRMSNorm` compiled;
  layer    every `LlamaDecoderLayer` compiled whole (dynamo traces into the KV cache's update).
All with `dynamic=True`, so batch and length changes reuse the graphs (sizes 0 and 1 are
specialised: a decoding step, a batch of one and a prefill are separate graphs).

Workloads:
  decode  the local provider's `ContinuousBatch` on the embedded model (int8 layers, as
          `load_causal_lm` loads it): `--rows` random prompts of ~`--context` tokens prefilled
          together, then `--steps` greedy decoding steps;
  score   the `classify` judge head on the embedded model, loaded in int8 as `judgeforge
          predict` loads it (untrained: speed does not depend on the weights), scoring `--rows`
          demo customer messages (`data/01_raw/customer_messages.csv`, repeated).
Each worker first runs the workload eagerly for reference outputs, then compiles, runs it once
(the compile run, timed) and `--repeats` times more (medians); it reports wall and CPU seconds,
the cores used, and how far the compiled outputs are from the eager ones (logits of the same
fed tokens for decode, class logits for score).

    python benchmarks/compiled_forward.py --workload decode --rows 16 --context 60 --steps 16 \
        --threads 1 --scopes eager,linear,mlpnorm,layer
    python benchmarks/compiled_forward.py --workload score --rows 256 --threads 1
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCOPES = ("eager", "linear", "mlpnorm", "layer")


def compile_scope(model: Any, scope: str) -> int:
    """Compile `model`'s submodules of `scope` in place (dynamic shapes); return how many."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaMLP, LlamaRMSNorm

    from judgeforge.llm.quantized import Int8Linear

    kinds = {
        "eager": (),
        "linear": (Int8Linear,),
        "mlpnorm": (LlamaMLP, LlamaRMSNorm),
        "layer": (LlamaDecoderLayer,),
    }[scope]
    targets = [module for module in model.modules() if isinstance(module, kinds)]
    for module in targets:
        module.compile(dynamic=True)
    return len(targets)


def decode_workload(rows: int, context: int, steps: int) -> tuple[Any, Any, Any]:
    """(model, run, reference): `run()` times a prefill and `steps` steps; `reference()` the logits of fixed tokens."""
    import torch

    from judgeforge.llm.local import ActiveRow, ContinuousBatch, load_causal_lm
    from judgeforge.llm.types import LLMRequest
    from judgeforge.models.embedded import embedded_model_dir

    loaded = load_causal_lm(embedded_model_dir())
    generator = torch.Generator().manual_seed(0)
    prompts = [
        torch.randint(100, 20_000, (context - 3 * (i % 5),), generator=generator).tolist()
        for i in range(rows)
    ]
    request = LLMRequest.from_prompt("-", max_tokens=steps + 1)

    def fresh() -> tuple[Any, list[Any]]:
        batch = ContinuousBatch(loaded.model, loaded.tokenizer.pad_token_id)
        return batch, [ActiveRow(i, request, len(p), None) for i, p in enumerate(prompts)]

    def run() -> dict:
        batch, active = fresh()
        with torch.inference_mode():
            prefill = _clock()
            batch.admit(active, prompts)
            prefill = _clock(prefill)
            decode = _clock()
            for _ in range(steps):
                batch.step()
            decode = _clock(decode)
        return {
            "prefill": prefill,
            "decode": decode,
            "items": steps * rows,
            "tokens": [row.tokens for row in batch.rows],
        }

    def reference() -> list[list[float]]:
        batch, active = fresh()
        seen = []
        forward = batch._forward

        def recording(*args: Any) -> Any:
            logits = forward(*args)
            seen.append(logits.clone())
            return logits

        batch._forward = recording
        with torch.inference_mode():
            batch.admit(active, prompts)
            for fed in (1000, 2000):  # the same tokens on both sides, whatever was picked
                for row in batch.rows:
                    row.tokens[-1] = fed
                batch.step()
        return torch.stack(seen).tolist()

    return loaded.model, run, reference


def score_workload(rows: int) -> tuple[Any, Any, Any]:
    """(model, run, reference) of the int8 classify judge scoring `rows` demo messages."""
    import pandas as pd
    import torch
    from judge_speed import loaded_judges

    texts = pd.read_csv(ROOT / "data" / "01_raw" / "customer_messages.csv")["text"].tolist()
    frame = pd.DataFrame({"text": [texts[i % len(texts)] for i in range(rows)]})
    torch.manual_seed(0)  # the same untrained classification head in every scope's process
    judge = loaded_judges("classify", int8=True)["classify int8"]
    judge.predict(frame.iloc[:2])  # the int8 swap happens at the first scoring call

    def run() -> dict:
        score = _clock()
        logits = judge.logits(judge.render(frame)[0])
        return {"score": _clock(score), "items": rows, "labels": logits.argmax(axis=1).tolist()}

    def reference() -> list[list[float]]:
        return judge.logits(judge.render(frame)[0]).tolist()

    return judge.model, run, reference


def _clock(started: tuple[float, float] | None = None) -> Any:
    now = (time.perf_counter(), time.process_time())
    if started is None:
        return now
    return {"wall_s": now[0] - started[0], "cpu_s": now[1] - started[1]}


def worker(args: argparse.Namespace) -> dict:
    """Reference outputs eagerly, then compile `args.worker` scope and time the workload."""
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    if args.workload == "decode":
        model, run, reference = decode_workload(args.rows, args.context, args.steps)
    else:
        model, run, reference = score_workload(args.rows)
    eager = np.array(reference())
    compiled_modules = compile_scope(model, args.worker)
    started = time.perf_counter()
    first = run()
    first_s = time.perf_counter() - started
    runs = [run() for _ in range(args.repeats)]
    outputs = np.array(reference())
    same_key = "tokens" if args.workload == "decode" else "labels"
    from torch._dynamo.utils import counters

    return {
        "scope": args.worker,
        "compiled_modules": compiled_modules,
        "threads": args.threads,
        "first_run_s": first_s,
        "runs": [{k: v for k, v in r.items() if k != same_key} for r in runs],
        "repeatable": all(r[same_key] == first[same_key] for r in runs),
        "outputs": first[same_key],
        "max_abs_logit_change": float(np.abs(outputs - eager).max()),
        "argmax_agreement": float((outputs.argmax(-1) == eager.argmax(-1)).mean()),
        "graphs": counters["stats"].get("unique_graphs", 0),
        "graph_breaks": sum(counters["graph_break"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", choices=("decode", "score"), default="decode")
    parser.add_argument("--scopes", default=",".join(SCOPES))
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--context", type=int, default=60)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks")]),
        "HF_HUB_OFFLINE": "1",
        "KEDRO_DISABLE_TELEMETRY": "1",
    }
    forwarded = [f"--{k}={getattr(args, k)}" for k in ("workload", "rows", "context", "steps")]
    forwarded += [f"--repeats={args.repeats}", f"--threads={args.threads}"]
    results = {}
    with tempfile.TemporaryDirectory() as inductor_cache:
        # a cold compile cache, shared by the scopes of this run
        env["TORCHINDUCTOR_CACHE_DIR"] = inductor_cache
        for scope in args.scopes.split(","):
            load = os.getloadavg()[0]
            done = subprocess.run(
                [sys.executable, __file__, *forwarded, "--worker", scope],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            results[scope] = json.loads(done.stdout.strip().splitlines()[-1])
            results[scope]["load"] = [round(load, 2), round(os.getloadavg()[0], 2)]
            print(json.dumps({k: v for k, v in results[scope].items() if k != "outputs"}))
    report(results, args)


def report(results: dict, args: argparse.Namespace) -> None:
    """A markdown table: medians per item (decoded token or scored row), wall and CPU, vs eager."""
    phases = ("prefill", "decode") if args.workload == "decode" else ("score",)
    eager = results.get("eager")
    print(f"\n{args.workload}, {args.rows} rows, threads {args.threads}, medians of {args.repeats}")
    print(
        "| scope | phase | wall s | CPU s | cores | × CPU vs eager | × wall vs eager "
        "| first run s | graphs | max abs logit change | argmax agreement | same outputs "
        "as eager | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for scope, result in results.items():
        for phase in phases:
            wall = statistics.median(r[phase]["wall_s"] for r in result["runs"])
            cpu = statistics.median(r[phase]["cpu_s"] for r in result["runs"])
            ratios = ["–", "–"]
            if eager is not None:
                eager_wall = statistics.median(r[phase]["wall_s"] for r in eager["runs"])
                eager_cpu = statistics.median(r[phase]["cpu_s"] for r in eager["runs"])
                ratios = [f"{eager_cpu / cpu:.2f}", f"{eager_wall / wall:.2f}"]
            same = "–" if eager is None else str(result["outputs"] == eager["outputs"])
            print(
                f"| {scope} | {phase} | {wall:.3f} | {cpu:.3f} | {cpu / wall:.2f} | {ratios[0]} "
                f"| {ratios[1]} | {result['first_run_s']:.1f} | {result['graphs']} "
                f"| {result['max_abs_logit_change']:.3g} | {result['argmax_agreement']:.3f} "
                f"| {same} | {result['load'][0]}–{result['load'][1]} |"
            )


if __name__ == "__main__":
    main()
