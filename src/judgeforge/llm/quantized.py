"""Precisions for CPU decoding and scoring: bfloat16 where the CPU has a bfloat16 matrix unit
(AMX), int8 linear layers where it multiplies int8 fast, float16 weights elsewhere.

Bfloat16: the whole model, weights, activations and cached keys and values, as on a GPU. On a
Xeon with AMX (1 thread) SmolLM2 prefilled a 780-token prompt in ~430 ms against ~890 with int8
layers (whose per-token quantisation costs about what their products do) and took a decoding
step of 14 rows over 1,150 cached tokens in ~122 ms against ~170 (BENCHMARKS.md, issue 15,
sixteenth round). Linear layers alone in bfloat16, the rest float32, gained nothing there:
converting every input and output cost what the products saved.

Int8: weights quantized per output channel, activations per row.

Why not `torch.ao.quantization.quantize_dynamic`: it scales activations per tensor, so a row's
answer would depend on which rows (and how much left padding) shared its batch. Here every row
has its own scale and the int8 product is summed exactly in int32, so a row's output is the
same alone or in any batch. On a 2-core CPU the layers of SmolLM2-135M run ~3 times faster
than float32 while decoding and ~1.8 times faster on prompts (BENCHMARKS.md, issue 15).

Sibling layers that read the same input (attention's query, key and value; the MLP's gate and
up projections) share one weight matrix: the input is quantized once and multiplied once, and
each sibling takes its columns. Quantizing and rescaling cost about as much as the int8 product
itself on scoring batches (torch profiler, BENCHMARKS.md issue 12, round 6).

Float16 weights: where int8 products are slow (AVX2 alone), fbgemm's float16-weight product
reads half the bytes of a float32 one and computes in float32 on float32 activations. A decoding
step of 16 rows is its main user: there memory, not arithmetic, bounds a product.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

import torch

from judgeforge.errors import UserError

INT8_MAX = 127
# CPU features with an int8 dot product, where oneDNN's int8 kernels (torch._int_mm) run. Without
# one, oneDNN falls back to a reference loop: on an AMD EPYC with AVX2 alone (2 threads, idle),
# products of 16-512 rows took 24-55 times as long as float32 ones, a SmolLM2 forward pass 66 times
# and a 16-row decoding step 15 times (BENCHMARKS.md, "int8 only where the CPU has an int8 dot
# product"). AVX-VNNI alone (client CPUs) and AVX-512 without VNNI were not measured here; they
# take the path without int8 (float16 weights or float32), the safe side.
INT8_DOT_PRODUCT_FEATURES = ("avx512_vnni", "amx_int8")
# Why a CPU without one does not run int8, for the lines that say so.
WITHOUT_INT8_DOT_PRODUCT = (
    "this CPU has no int8 dot product (VNNI or AMX): int8 layers run many times slower than "
    "float32 here"
)
# CPU features with a bfloat16 matrix unit, where oneDNN runs bfloat16 products in AMX tiles: on a
# Xeon with AMX (1 thread), a 780 x 576 -> 3072 product took 1.9 ms in bfloat16, 2.5 ms as the
# int8 product alone and 14.1 ms in float32. AVX-512 BF16 alone was not measured here; it takes
# the next path down, the safe side.
BFLOAT16_PRODUCT_FEATURES = ("amx_bf16",)
# The precisions of a local model on a CPU, fastest first where the CPU has each one's unit, and
# how the log says each.
PRECISIONS = {
    "bfloat16": "the whole model in bfloat16",
    "int8": "linear layers in int8",
    "float16": "linear layers with float16 weights",
    "float32": "linear layers in float32",
}
PRECISION_ENV = "JUDGEFORGE_LOCAL_PRECISION"
_TINY = 1e-8  # the scale of an all-zero row or channel, so nothing divides by zero
# Children of one module that the model always calls on the same tensor (Llama, BERT).
SHARED_INPUT_GROUPS = (
    ("q_proj", "k_proj", "v_proj"),
    ("gate_proj", "up_proj"),
    ("query", "key", "value"),
)


@functools.cache
def int8_products_are_fast() -> bool:
    """Whether this CPU has an int8 dot product (INT8_DOT_PRODUCT_FEATURES), so int8 layers beat float32 ones."""
    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(feature, False) for feature in INT8_DOT_PRODUCT_FEATURES)


@functools.cache
def bfloat16_products_are_fast() -> bool:
    """Whether this CPU has a bfloat16 matrix unit (BFLOAT16_PRODUCT_FEATURES), so a bfloat16 model beats int8 and float32 layers."""
    capabilities = torch.cpu.get_capabilities()
    return any(capabilities.get(feature, False) for feature in BFLOAT16_PRODUCT_FEATURES)


def fastest_precision() -> str:
    """The fastest precision of a model on this CPU: bfloat16 with AMX, int8 with an int8
    dot product, float16 weights where torch has fbgemm's product, else float32."""
    if bfloat16_products_are_fast():
        return "bfloat16"
    if int8_products_are_fast():
        return "int8"
    return "float16" if float16_weights_available() else "float32"


def chosen_precision() -> str | None:
    """The precision JUDGEFORGE_LOCAL_PRECISION names for the embedded model (None: unset or
    `auto`, the fastest this CPU has)."""
    chosen = os.environ.get(PRECISION_ENV, "").strip().lower()
    if chosen in ("", "auto"):
        return None
    if chosen not in PRECISIONS:
        raise UserError(
            f"{PRECISION_ENV}={chosen!r} is not a precision of the local model: set it to "
            f"{', '.join(PRECISIONS)} or auto, or unset it"
        )
    if chosen == "float16" and not float16_weights_available():
        raise UserError(
            f"{PRECISION_ENV}=float16 needs fbgemm's float16-weight product, which this torch "
            "build lacks: set it to another precision, or unset it"
        )
    return chosen


def why_slow(precision: str) -> str | None:
    """Why `precision` runs slowly on this CPU, for a warning when a user asks for it; None when it does not."""
    if precision == "int8" and not int8_products_are_fast():
        return WITHOUT_INT8_DOT_PRODUCT
    if precision == "bfloat16" and not bfloat16_products_are_fast():
        return (
            "this CPU has no bfloat16 matrix unit (AMX), the only kind where bfloat16 was "
            "measured faster than the other precisions"
        )
    return None


@functools.cache
def float16_weights_available() -> bool:
    """Whether this torch build has fbgemm's float16-weight linear product (x86 builds do)."""
    # A build without fbgemm (ARM, for one) raises here; its layers then stay float32.
    try:
        packed = torch.ops.quantized.linear_prepack_fp16(torch.ones(1, 1), None)
        torch.ops.quantized.linear_dynamic_fp16(torch.ones(1, 1), packed)
    except (AttributeError, NotImplementedError, RuntimeError):
        return False
    return True


def _scales(values: torch.Tensor) -> torch.Tensor:
    """One scale per row of `values`: its largest magnitude maps to INT8_MAX."""
    return values.abs().amax(dim=-1, keepdim=True).clamp(min=_TINY) / INT8_MAX


def _int8_product(
    inputs: torch.Tensor,
    weight_t: torch.Tensor,
    weight_scale: torch.Tensor,
    bias: torch.Tensor | None,
) -> torch.Tensor:
    """Return `inputs @ weight` (2-D float rows) with both sides in int8, summed exactly in int32."""
    scale = _scales(inputs)
    quantized = inputs.div(scale).round_().to(torch.int8)
    # In place: each pass over the output is as costly as a small matmul.
    out = torch._int_mm(quantized, weight_t).float().mul_(scale).mul_(weight_scale)
    return out if bias is None else out.add_(bias)


class Int8Linear(torch.nn.Module):
    """`nn.Linear` with int8 weights (a scale per output channel) and int8 activations (a scale per row)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        weight = linear.weight.detach().float()
        scale = _scales(weight)
        self.register_buffer(
            "weight_t", torch.round(weight / scale).to(torch.int8).t().contiguous()
        )
        self.register_buffer("weight_scale", scale.t().contiguous())
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().float().clone())
        self.out_features = linear.out_features
        self.shared: SharedInputProduct | None = None

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if self.shared is not None:
            return self.shared.columns_of(self, inputs)
        rows = inputs.reshape(-1, inputs.shape[-1]).float()
        out = _int8_product(rows, self.weight_t, self.weight_scale, self.bias)
        return out.to(inputs.dtype).reshape(*inputs.shape[:-1], self.out_features)


class SharedInputProduct:
    """One int8 product for sibling layers that read the same input; each takes its own columns.

    The first sibling called computes every sibling's output; the others find theirs as long as
    they are called on the very same tensor, and a sibling called on another tensor computes
    afresh. The outputs are dropped once every sibling has taken its columns. What was computed
    is kept per thread: threads that share the model never see each other's outputs.
    """

    def __init__(self, members: list[Int8Linear]):
        self.weight_t = torch.cat([m.weight_t for m in members], dim=1).contiguous()
        self.weight_scale = torch.cat([m.weight_scale for m in members], dim=1).contiguous()
        biases = [m.bias for m in members]
        self.bias = (
            None
            if all(b is None for b in biases)
            else torch.cat(
                [torch.zeros(m.out_features) if b is None else b for m, b in zip(members, biases)]
            )
        )
        ends = itertools.accumulate(m.out_features for m in members)
        self.columns = {id(m): slice(end - m.out_features, end) for m, end in zip(members, ends)}
        self._last = threading.local()

    def __getstate__(self) -> dict:
        # Copies (deepcopy, pickle) start with nothing computed; a thread-local cannot be copied.
        return {key: value for key, value in self.__dict__.items() if key != "_last"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._last = threading.local()

    def columns_of(self, member: Int8Linear, inputs: torch.Tensor) -> torch.Tensor:
        """Return `member`'s output on `inputs`, computing the whole group's when it is not at hand."""
        last = self._last
        if getattr(last, "input", None) is not inputs or id(member) not in last.waiting:
            rows = inputs.reshape(-1, inputs.shape[-1]).float()
            last.input = inputs
            last.output = _int8_product(rows, self.weight_t, self.weight_scale, self.bias)
            last.waiting = set(self.columns)
        output = last.output[:, self.columns[id(member)]]
        last.waiting.discard(id(member))
        if not last.waiting:
            last.input = last.output = None
        return output.to(inputs.dtype).reshape(*inputs.shape[:-1], member.out_features)


class Float16WeightLinear(torch.nn.Module):
    """`nn.Linear` with its weight held in float16 (fbgemm-packed); inputs and outputs stay float32."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        bias = linear.bias
        self.packed = torch.ops.quantized.linear_prepack_fp16(
            linear.weight.detach().float(), None if bias is None else bias.detach().float()
        )
        self.out_features = linear.out_features

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        rows = inputs.reshape(-1, inputs.shape[-1]).float()
        out = torch.ops.quantized.linear_dynamic_fp16(rows, self.packed)
        return out.to(inputs.dtype).reshape(*inputs.shape[:-1], self.out_features)


def _replace_linears(
    model: Any, make: Callable[[torch.nn.Linear], torch.nn.Module]
) -> dict[str, Any]:
    """Replace every `nn.Linear` of `model` (the output head too) by `make(linear)`; return them by name."""
    targets = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear)
    ]
    replaced = {}
    for name, module in targets:
        parent_name, _, attribute = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        replaced[name] = make(module)
        setattr(parent, attribute, replaced[name])
    return replaced


def float16_weight_linears(model: Any) -> int:
    """Replace every `nn.Linear` of `model` (the output head too) by a Float16WeightLinear; return how many."""
    return len(_replace_linears(model, Float16WeightLinear))


def lower_precision(model: Any, precision: str) -> None:
    """Put `model` in `precision` (one of PRECISIONS): bfloat16 the whole model (weights,
    activations, cached keys and values); int8 or float16 weights its linear layers."""
    if precision == "bfloat16":
        model.to(torch.bfloat16)
    elif precision == "int8":
        quantize_linears(model)
    elif precision == "float16":
        float16_weight_linears(model)


def contiguous_output_head_inputs(model: Any) -> None:
    """Hand `model`'s output head (if any) a contiguous copy of its input.

    transformers gives the head the last position of every row (`logits_to_keep=1`), a strided
    view; torch multiplies a strided [rows, 1, hidden] input by expanding the head's weight to
    one copy per row. For SmolLM2's 49,152 × 576 head at 32 rows (2 threads) that took 2.2 s in
    bfloat16 and 110 ms in float32, against 4.5 ms on a contiguous copy of the 32 rows.
    """
    head = model.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(lambda _, inputs: (inputs[0].contiguous(), *inputs[1:]))


def quantize_linears(model: Any) -> int:
    """Replace every `nn.Linear` of `model` (the output head too) by an Int8Linear; return how many."""
    replaced = _replace_linears(model, Int8Linear)
    _share_inputs(replaced)
    return len(replaced)


def _share_inputs(layers: dict[str, Int8Linear]) -> None:
    """Give each complete group of sibling layers (SHARED_INPUT_GROUPS) one shared product."""
    parents = {name.rpartition(".")[0] for name in layers}
    for parent in parents:
        prefix = f"{parent}." if parent else ""
        for group in SHARED_INPUT_GROUPS:
            names = [prefix + attribute for attribute in group]
            if all(name in layers for name in names):
                product = SharedInputProduct([layers[name] for name in names])
                for name in names:
                    layer = layers[name]
                    layer.shared = product
                    # A view of the shared matrix, so the weights are held once.
                    layer.weight_t = product.weight_t[:, product.columns[id(layer)]]
