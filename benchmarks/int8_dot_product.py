"""Int8 against float32 on this CPU: one linear product, then the embedded SmolLM2 whole.

judgeforge runs its linear layers in int8 only where the CPU has an int8 dot product
(`judgeforge.llm.quantized.int8_products_are_fast`: AVX-512 VNNI or AMX). This prints what the
CPU reports, that decision, and the times both ways, side by side in one process, so the rule
can be checked on any machine:

    PYTHONPATH=src .venv/bin/python benchmarks/int8_dot_product.py --threads 2

Medians of `--repeats` runs after one warm-up run. On a CPU without an int8 dot product the int8
side is tens of times slower: keep the shapes small there.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable

import torch

from judgeforge.llm.quantized import (
    INT8_DOT_PRODUCT_FEATURES,
    Int8Linear,
    int8_products_are_fast,
    quantize_linears,
)
from judgeforge.models.embedded import embedded_model_dir

# SmolLM2-135M's hidden and MLP widths: the MLP's gate and up products, one matrix
IN_FEATURES, OUT_FEATURES = 576, 2 * 1536


def median_seconds(
    run: Callable[[torch.Tensor], object], inputs: torch.Tensor, repeats: int
) -> float:
    """Median wall seconds of `repeats` calls of `run` on `inputs`, after one warm-up call."""
    run(inputs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(inputs)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, nargs="+", default=[16, 64, 512])
    parser.add_argument("--prompts", type=int, default=4, help="prompts of the forward pass")
    parser.add_argument("--tokens", type=int, default=60, help="tokens per prompt")
    parser.add_argument("--step-rows", type=int, default=16, help="rows of one decoding step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    capabilities = torch.cpu.get_capabilities()
    print(
        f"cpu: {capabilities.get('cpu_name')}, torch {torch.__version__}, {args.threads} thread(s)"
    )
    print(
        "features: "
        + ", ".join(f"{f}={bool(capabilities.get(f))}" for f in ("avx2", "avx512_f", "avx_vnni"))
        + ", "
        + ", ".join(f"{f}={bool(capabilities.get(f))}" for f in INT8_DOT_PRODUCT_FEATURES)
    )
    print(f"int8_products_are_fast: {int8_products_are_fast()}")
    print("\n| what | float32 | int8 | int8 / float32 |\n|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(IN_FEATURES, OUT_FEATURES, bias=False)
    int8_linear = Int8Linear(linear)
    with torch.inference_mode():
        for rows in args.rows:
            inputs = torch.randn(rows, IN_FEATURES, generator=generator)
            float_s = median_seconds(linear, inputs, args.repeats)
            int8_s = median_seconds(int8_linear, inputs, args.repeats)
            print(
                f"| one linear layer, {rows} × {IN_FEATURES} → {OUT_FEATURES} | "
                f"{float_s * 1e3:.2f} ms | {int8_s * 1e3:.2f} ms | ×{int8_s / float_s:.1f} |"
            )
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(embedded_model_dir()).eval()
        int8_model = copy.deepcopy(model)
        quantize_linears(int8_model)
        shapes = {
            f"SmolLM2 forward, {args.prompts} prompts × {args.tokens} tokens": (
                args.prompts,
                args.tokens,
            ),
            f"SmolLM2 step, {args.step_rows} rows × 1 token": (args.step_rows, 1),
        }
        for what, shape in shapes.items():
            ids = torch.randint(100, 10_000, shape, generator=generator)
            float_s = median_seconds(model, ids, args.repeats)
            int8_s = median_seconds(int8_model, ids, args.repeats)
            print(
                f"| {what} | {float_s * 1e3:.0f} ms | {int8_s * 1e3:.0f} ms "
                f"| ×{int8_s / float_s:.1f} |"
            )


if __name__ == "__main__":
    main()
