"""Where a decoding step of the embedded model goes at a long context, against what this CPU's
memory could feed it.

A decoding step of `--rows` rows over `--context` cached tokens, the model loaded as the local
provider loads it (`load_causal_lm`: int8, float16 weights or float32, whichever this CPU gets),
its keys and values in the provider's chunked cache. It prints:

- how fast one thread reads memory here (a sum over 512 MB, far larger than any cache);
- the share of a step with SDPA in attention and in the linear layers (torch's profiler, self
  time per operator);
- decoding attention alone, layer after layer, as transformers' SDPA path calls it (the query
  heads packed per key-value head) and as judgeforge's kernel (`judgeforge.llm.decode_attention`,
  what the local provider uses on one thread) computes it, beside the time it would take to read
  that layer's keys and values once at the measured memory speed;
- the step's median time with each of the two.

    PYTHONPATH=src .venv/bin/python benchmarks/decode_step.py --rows 14 --context 1150 --threads 1

Medians of `--repeats` after two warm-up runs; the keys and values are random (timing does not
depend on them).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from judgeforge.llm import decode_attention
from judgeforge.llm.decode_attention import DECODE_ATTENTION, decode_attention_forward
from judgeforge.llm.kv_cache import chunked_cache
from judgeforge.llm.local import ContinuousBatch, load_causal_lm
from judgeforge.models.embedded import embedded_model_dir

READ_BYTES = 512 * 2**20
ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu",)
LINEAR_OPS = ("quantized::linear_dynamic_fp16", "aten::addmm", "aten::mm", "aten::_int_mm")


def median_ms(run: Callable[[], object], repeats: int) -> float:
    """Median wall milliseconds of `run` over `repeats` calls after two warm-up calls."""
    for _ in range(2):
        run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def read_speed_gb_s(repeats: int) -> float:
    """GB/s at which one thread sums a float32 tensor of READ_BYTES."""
    data = torch.ones(READ_BYTES // 4)
    return READ_BYTES / median_ms(data.sum, repeats) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=14)
    parser.add_argument("--context", type=int, default=1150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # the kernel at any context length: the local provider leaves short ones to SDPA
    decode_attention.KERNEL_MIN_TOKENS = 0

    model = load_causal_lm(embedded_model_dir()).model
    config = model.config
    kv_heads, head_dim = (
        config.num_key_value_heads,
        config.hidden_size // config.num_attention_heads,
    )
    shape = (args.rows, kv_heads, args.context, head_dim)
    cache = chunked_cache(
        [(torch.randn(shape), torch.randn(shape)) for _ in range(config.num_hidden_layers)]
    )
    mask = torch.ones(args.rows, args.context + 1, dtype=torch.long)
    mask[: args.rows // 2, :40] = 0  # left padding, as rows of different prompt lengths have
    ids = torch.randint(0, config.vocab_size, (args.rows, 1))
    batch = ContinuousBatch(model, pad_token_id=0)

    def step() -> None:
        batch._forward(ids, mask, cache)  # the local provider's own forward pass
        for layer in cache.layers:  # forget the step's token, so every step sees the same context
            layer.keys, layer.values = (
                layer.keys[:, :, : args.context],
                layer.values[:, :, : args.context],
            )

    speed = read_speed_gb_s(args.repeats)
    step_ms = {}
    with torch.inference_mode():
        for implementation in ("sdpa", DECODE_ATTENTION):
            model.set_attn_implementation(implementation)
            step_ms[implementation] = median_ms(step, args.repeats)
        model.set_attn_implementation("sdpa")
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            for _ in range(args.repeats):
                step()
        self_us = {row.key: row.self_cpu_time_total for row in profiled.key_averages()}
        total = sum(self_us.values())
        attention = sum(self_us.get(op, 0) for op in ATTENTION_OPS) / total
        linear = sum(self_us.get(op, 0) for op in LINEAR_OPS) / total

        query = torch.randn(args.rows, config.num_attention_heads, 1, head_dim)
        layer_mask = (mask[:, None, None, : args.context] == 1).contiguous()
        attention_ms = {
            "sdpa": median_ms(
                lambda: every_layer(cache, sdpa_attention_forward, model, query, layer_mask),
                args.repeats,
            ),
            DECODE_ATTENTION: median_ms(
                lambda: every_layer(cache, decode_attention_forward, model, query, layer_mask),
                args.repeats,
            ),
        }
    layers = config.num_hidden_layers
    layer_bytes = 2 * args.rows * kv_heads * args.context * head_dim * 4
    floor_ms = layer_bytes / speed / 1e6
    print(
        f"threads {args.threads}, {args.rows} rows x {args.context} cached tokens, medians of {args.repeats}"
    )
    print(f"memory read by one thread: {speed:.1f} GB/s")
    print(
        f"a step with SDPA: attention {attention:.0%}, linear layers {linear:.0%} (profiler self time)"
    )
    print(
        f"keys and values per layer: {layer_bytes / 1e6:.1f} MB, read once at {speed:.1f} GB/s in {floor_ms:.2f} ms"
    )
    for implementation, name in (("sdpa", "SDPA"), (DECODE_ATTENTION, "judgeforge")):
        per_layer = attention_ms[implementation] / layers
        print(
            f"{name}: attention per layer {per_layer:.2f} ms ({layer_bytes / per_layer / 1e6:.1f} GB/s),"
            f" x {layers} layers {attention_ms[implementation]:.0f} ms; decoding step {step_ms[implementation]:.1f} ms"
        )
    print(
        f"judgeforge / SDPA: attention x{attention_ms['sdpa'] / attention_ms[DECODE_ATTENTION]:.2f},"
        f" step x{step_ms['sdpa'] / step_ms[DECODE_ATTENTION]:.2f}"
    )


def every_layer(cache, attend: Callable, model, query: torch.Tensor, mask: torch.Tensor) -> None:
    """`attend` over every layer's cached keys and values in turn, as in a step (one layer's
    alone would stay in the CPU's cache)."""
    for layer, attention in zip(cache.layers, (block.self_attn for block in model.model.layers)):
        attend(attention, query, layer.keys, layer.values, mask)


if __name__ == "__main__":
    main()
