"""Attention of the local provider: each row of a left-padded batch over its own tokens only.

Why: a row's answer bit for bit the same alone and in any batch. Over the padded width (what
transformers' SDPA path computes), the padding shifts where PyTorch's vectorised sums and blocks of
keys start relative to the row's first token, which changes the rounding: with SmolLM2's 64-wide
heads no row of a padded batch matched itself decoded alone (BENCHMARKS.md, issue 15, fourth
round). Here every row is computed on views of the cache that start at its first real token, so
its reductions have the same length and order whatever rows share its batch:
- a one-token (decoding) query is a plain matmul, softmax and matmul over the row's cached keys
  and values, the grouped-query heads sharing their key/value head by a reshape of the queries to
  [kv heads, groups, dim] rather than a copy of the keys per query head (`repeat_kv`); on long
  rows it costs about what SDPA did, both being bound by reading the cache from memory;
- a prompt (several query tokens, a fresh cache) is PyTorch's causal SDPA per row.
Masks of other layouts (not left padding) and arguments that change the arithmetic (soft caps,
position biases, sinks, dropout) go to transformers' SDPA for the whole batch.
"""

from __future__ import annotations

from typing import Any

import torch

ROW_ATTENTION = "judgeforge_rows"  # the name models are switched to (`attn_implementation`)

# Arguments that change the arithmetic of attention; a layer passing any of them gets SDPA.
_SDPA_ONLY = ("softcap", "position_bias", "s_aux")


def row_attention() -> str:
    """Register the row-wise attention (and SDPA's boolean masks for it) with transformers; return its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(ROW_ATTENTION, row_attention_forward)
    AttentionMaskInterface.register(ROW_ATTENTION, sdpa_mask)
    return ROW_ATTENTION


def row_attention_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Attention output [rows, query tokens, heads, dim], each row over its own tokens."""
    starts = None
    if not dropout and all(kwargs.get(name) is None for name in _SDPA_ONLY):
        starts = _first_real_tokens(attention_mask, query.shape[0], query.shape[2], key.shape[2])
    if starts is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    scale = query.shape[-1] ** -0.5 if scaling is None else scaling
    if query.shape[2] == 1:
        return _one_token_queries(query, key, value, starts, scale), None
    return _prompts(query, key, value, starts, scale), None


def _one_token_queries(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, starts: list[int], scale: float
) -> torch.Tensor:
    """softmax(q k^T) v per row over its cached tokens from `starts[row]` on, as [rows, 1, heads, dim]."""
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    grouped = query.reshape(rows, kv_heads, heads // kv_heads, dim) * scale
    output = query.new_empty(rows, kv_heads, heads // kv_heads, value.shape[-1])
    for row, start in enumerate(starts):
        keys, values = key[row, :, start:], value[row, :, start:]
        weights = torch.softmax(torch.matmul(grouped[row], keys.transpose(-1, -2)), dim=-1)
        torch.matmul(weights, values, out=output[row])
    # [rows, kv heads, groups, dim] is [rows, 1 query token, heads, dim] in memory
    return output.reshape(rows, 1, heads, value.shape[-1])


def _prompts(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, starts: list[int], scale: float
) -> torch.Tensor:
    """Causal SDPA per row over its tokens from `starts[row]` on; zeros at padding positions."""
    rows, heads, length, _ = query.shape
    output = query.new_zeros(rows, length, heads, value.shape[-1])
    for row, start in enumerate(starts):
        attended = torch.nn.functional.scaled_dot_product_attention(
            query[row : row + 1, :, start:],
            key[row : row + 1, :, start:],
            value[row : row + 1, :, start:],
            is_causal=True,
            scale=scale,
            enable_gqa=True,
        )
        output[row, start:] = attended[0].transpose(0, 1)
    return output


def _first_real_tokens(
    mask: torch.Tensor | None, rows: int, queries: int, length: int
) -> list[int] | None:
    """Per row, the first cached token it attends to, when the mask is causal over left padding; else None.

    A one-token query may sit after any cached tokens; several queries must be the whole cache
    (a prompt's prefill), so that causal attention over a row's tokens is SDPA's `is_causal`.
    """
    if queries > 1 and queries != length:
        return None
    if mask is None:
        return [0] * rows
    if mask.dtype != torch.bool:
        return None
    attended = mask[:, 0].expand(rows, queries, length)
    first = length - attended[:, -1].sum(dim=-1)  # the last query sees every real token
    columns = torch.arange(length, device=mask.device)
    expected = columns >= first[:, None]  # [rows, length]: left padding, then real tokens
    if queries > 1:
        expected = expected[:, None, :] & (columns[:, None] >= columns[None, :])  # and causal
    return first.tolist() if torch.equal(attended, expected.view_as(attended)) else None
