"""Decoding attention for the embedded model on a CPU thread: each row's one new query token
against its cached keys and values, read once.

For one query token per row, transformers calls torch's SDPA with the query heads packed per
key-value head: products of 3 rows by ~1,000 cached tokens, which torch's matrix routines run
far below memory speed. At 14 rows × 1,150 cached tokens SmolLM2's attention read its keys and
values at 4.9 GB/s where one thread reads memory at 19.4 GB/s, and it was 61 % of a decoding step
(`benchmarks/decode_step.py`, BENCHMARKS.md, issue 15, fourteenth round). The kernel here (numba,
compiled once per machine and cached) walks each row's keys, then its values, once; it gives
SDPA's result to float32 rounding.

Only a decoding step over KERNEL_MIN_TOKENS or more cached tokens in a process on one torch
thread takes it (the local provider's worker processes); shorter contexts, prefill, other
dtypes, layouts or attention variants, and processes on more threads (where SDPA splits the
work across them) go to transformers' SDPA path unchanged. JUDGEFORGE_LOCAL_ATTENTION=sdpa
leaves every call to SDPA (to compare, or to rule the kernel out).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numba
import numpy as np
import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from judgeforge.errors import UserError

DECODE_ATTENTION = "judgeforge_decode"
ATTENTION_ENV = "JUDGEFORGE_LOCAL_ATTENTION"
# the environment variable's values, by the transformers attention implementation each names
ATTENTION_CHOICES = {"judgeforge": DECODE_ATTENTION, "sdpa": "sdpa"}

# Below this many cached tokens a step gained little (x1.04 at 8 rows x 250 tokens) and end-to-end
# runs of one-sentence and rag rows measured x0.93 (unexplained, within their spread): SDPA
# keeps them (BENCHMARKS.md, issue 15, fourteenth round).
KERNEL_MIN_TOKENS = 512

# fast-math without "no infinities": masked tokens score -inf
_FAST_MATH = {"reassoc", "contract", "arcp", "nsz"}

# exp(x) = 2**y, y = x·log2(e), split as 2**n · 2**f with n = round(y) and f in [-1/2, 1/2];
# 2**f from its Taylor series to f**6 (relative error under 2e-7 there)
_LOG2_E = np.float32(1.4426950408889634)
_EXP2_TERMS = tuple(np.float32(math.log(2) ** k / math.factorial(k)) for k in range(1, 7))


# decoding steps' layer calls this process has sent through the kernel (what a job reports)
_kernel_calls = 0


def local_attention() -> str:
    """The attention implementation JUDGEFORGE_LOCAL_ATTENTION names for the local model
    (judgeforge's decoding kernel where it applies, when unset)."""
    chosen = os.environ.get(ATTENTION_ENV, "").strip().lower() or "judgeforge"
    if chosen not in ATTENTION_CHOICES:
        raise UserError(
            f"{ATTENTION_ENV}={chosen!r} is not an attention for the local model: "
            f"set it to {' or '.join(ATTENTION_CHOICES)}, or unset it"
        )
    return ATTENTION_CHOICES[chosen]


def kernel_calls() -> int:
    """How many decoding steps' layer calls this process has sent through the kernel so far."""
    return _kernel_calls


def _compiled(kernel: Callable) -> Callable:
    """`kernel` compiled by numba, the machine code kept for later processes where numba finds
    a writable folder (beside this file, else the user's cache), else compiled in each process."""
    options = {"fastmath": _FAST_MATH, "nogil": True, "boundscheck": False}
    try:
        return numba.njit(cache=True, **options)(kernel)
    except RuntimeError:  # numba: "cannot cache function ... no locator available"
        return numba.njit(**options)(kernel)


@_compiled
def _attend(query, keys, key_strides, values, value_strides, tokens, keep, scale, out):
    """Fill `out` [rows, kv heads, group, dim] with each query group's attention over its row's
    `tokens` cached keys and values; `keys`/`values` are flat, a (row, head) block at
    row·stride[0] + head·stride[1], its tokens one after another."""
    rows, kv_heads, group, dim = query.shape
    scores = np.empty((group, tokens), dtype=np.float32)
    weighted = np.empty((group, dim), dtype=np.float32)
    scaled = np.empty((group, dim), dtype=np.float32)
    exponents = np.empty(tokens, dtype=np.int32)
    powers_of_two = exponents.view(np.float32)
    c1, c2, c3, c4, c5, c6 = _EXP2_TERMS
    for row in range(rows):
        for head in range(kv_heads):
            start = row * key_strides[0] + head * key_strides[1]
            row_keys = keys[start : start + tokens * dim].reshape((tokens, dim))
            start = row * value_strides[0] + head * value_strides[1]
            row_values = values[start : start + tokens * dim].reshape((tokens, dim))
            for g in range(group):
                for d in range(dim):
                    scaled[g, d] = query[row, head, g, d] * scale
            for t in range(tokens):
                if keep[row, t]:
                    for g in range(group):
                        score = np.float32(0.0)
                        for d in range(dim):
                            score += scaled[g, d] * row_keys[t, d]
                        scores[g, t] = score
                else:
                    for g in range(group):
                        scores[g, t] = -np.inf
            for g in range(group):
                top = scores[g].max()
                # exp(score - top) written out (see _EXP2_TERMS), so LLVM computes 8 tokens at
                # once where np.exp calls libm per token (a quarter of the kernel's time); y is
                # clamped at -127, whose 2**n has no bits set: a masked token's weight is 0
                for t in range(tokens):
                    y = max((scores[g, t] - top) * _LOG2_E, np.float32(-127.0))
                    n = np.floor(y + np.float32(0.5))
                    f = y - n
                    scores[g, t] = np.float32(1.0) + f * (
                        c1 + f * (c2 + f * (c3 + f * (c4 + f * (c5 + f * c6))))
                    )
                    exponents[t] = (np.int32(n) + np.int32(127)) << np.int32(23)
                total = np.float32(0.0)
                for t in range(tokens):
                    scores[g, t] *= powers_of_two[t]
                    total += scores[g, t]
                for t in range(tokens):
                    scores[g, t] /= total
            weighted[:, :] = 0.0
            for t in range(tokens):
                for g in range(group):
                    weight = scores[g, t]
                    for d in range(dim):
                        weighted[g, d] += weight * row_values[t, d]
            out[row, head] = weighted


def _flat(cached: torch.Tensor) -> np.ndarray:
    """The elements `cached` spans, from its first, as one flat array (no copy)."""
    span = 1 + sum((size - 1) * stride for size, stride in zip(cached.shape, cached.stride()))
    return torch.as_strided(cached, (span,), (1,), cached.storage_offset()).numpy()


def _kernel_applies(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask, kwargs
) -> bool:
    """Whether this call is a one-thread float32 decoding step over a long context, in the
    layout `_attend` reads."""
    dim = key.shape[-1]
    return (
        query.shape[2] == 1
        and key.shape[2] >= KERNEL_MIN_TOKENS
        and torch.get_num_threads() == 1
        and query.dtype == key.dtype == value.dtype == torch.float32
        and query.shape[1] % key.shape[1] == 0
        and all(cached.stride()[2:] == (dim, 1) for cached in (key, value))
        and (
            mask is None
            or (mask.dtype == torch.bool and mask.shape[1] == 1 and mask.shape[-1] == key.shape[2])
        )
        and not any(kwargs.get(name) is not None for name in ("softcap", "sliding_window", "s_aux"))
    )


def decode_attention_forward(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers' attention output [rows, query tokens, heads, dim]: `_attend`'s for a
    one-thread float32 decoding step, SDPA's otherwise."""
    global _kernel_calls
    if module.training or dropout or not _kernel_applies(query, key, value, attention_mask, kwargs):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    _kernel_calls += 1
    return _decode(query, key, value, attention_mask, scaling), None


def prepare_kernel() -> None:
    """Compile the kernel, or load it from numba's cache, now rather than in a first decoding step."""
    cached = torch.zeros(1, 1, 1, 1)
    _decode(torch.zeros(1, 1, 1, 1), cached, cached, None, None)


def _decode(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None,
) -> torch.Tensor:
    """`_attend`'s attention output [rows, 1, heads, dim] for one query token per row."""
    rows, heads, _, dim = query.shape
    kv_heads, tokens = key.shape[1], key.shape[2]
    if attention_mask is None:
        keep = np.ones((rows, tokens), dtype=np.bool_)
    else:
        keep = attention_mask[:, 0, -1, :].expand(rows, tokens).contiguous().numpy()
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim).contiguous()
    out = torch.empty_like(grouped)
    _attend(
        grouped.numpy(),
        _flat(key),
        np.array(key.stride()[:2]),
        _flat(value),
        np.array(value.stride()[:2]),
        tokens,
        keep,
        np.float32(dim**-0.5 if scaling is None else scaling),
        out.numpy(),
    )
    return out.reshape(rows, 1, heads, dim)


AttentionInterface.register(DECODE_ATTENTION, decode_attention_forward)
AttentionMaskInterface.register(DECODE_ATTENTION, sdpa_mask)
