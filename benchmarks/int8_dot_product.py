"""Int8 and float16 weights against float32 on this CPU: one linear product, then the embedded
SmolLM2 whole.

judgeforge runs its linear layers in int8 only where the CPU has an int8 dot product
(`judgeforge.llm.quantized.int8_products_are_fast`: AVX-512 VNNI or AMX), and with float16
weights elsewhere where torch has that product (`float16_weights_available`). This prints what
the CPU reports, those decisions, and the times all three ways, side by side in one process, so
the rule can be checked on any machine:

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
    Float16WeightLinear,
    Int8Linear,
    float16_weight_linears,
    float16_weights_available,
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


def columns(times: dict[str, float], float_s: float, digits: int) -> str:
    """The int8 and float16 cells of a table row: milliseconds and the ratio to float32."""
    cells = []
    for variant in ("int8", "float16"):
        if variant in times:
            cells += [f"{times[variant] * 1e3:.{digits}f} ms", f"×{times[variant] / float_s:.2f}"]
        else:
            cells += ["n/a", "n/a"]
    return " | ".join(cells) + " |"


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
    half = float16_weights_available()
    print(f"float16_weights_available: {half}")
    print(
        "\n| what | float32 | int8 | int8 / float32 | float16 weights | float16 / float32 |"
        "\n|---|---|---|---|---|---|"
    )
    generator = torch.Generator().manual_seed(0)
    linear = torch.nn.Linear(IN_FEATURES, OUT_FEATURES, bias=False)
    variants = {"int8": Int8Linear(linear)}
    if half:
        variants["float16"] = Float16WeightLinear(linear)
    with torch.inference_mode():
        for rows in args.rows:
            inputs = torch.randn(rows, IN_FEATURES, generator=generator)
            float_s = median_seconds(linear, inputs, args.repeats)
            times = {k: median_seconds(v, inputs, args.repeats) for k, v in variants.items()}
            print(
                f"| one linear layer, {rows} × {IN_FEATURES} → {OUT_FEATURES} | "
                f"{float_s * 1e3:.2f} ms | {columns(times, float_s, 2)}"
            )
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(embedded_model_dir()).eval()
        models = {"int8": copy.deepcopy(model)}
        quantize_linears(models["int8"])
        if half:
            models["float16"] = copy.deepcopy(model)
            float16_weight_linears(models["float16"])
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
            times = {k: median_seconds(v, ids, args.repeats) for k, v in models.items()}
            print(f"| {what} | {float_s * 1e3:.0f} ms | {columns(times, float_s, 0)}")


if __name__ == "__main__":
    main()
