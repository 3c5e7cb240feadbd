"""The local provider's row-wise attention (llm/attention.py), on tiny random models."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from judgeforge.llm.attention import ROW_ATTENTION, row_attention_forward
from judgeforge.llm.local import ActiveRow, ContinuousBatch, load_causal_lm
from judgeforge.llm.types import LLMRequest
from tests.support.tiny_judge import save_checkpoint, tiny_llama

DIM = 64  # head size of the tiny models below, SmolLM2's: at 8 SDPA happened to be row-exact too
TINY = {"hidden_size": 4 * DIM, "intermediate_size": 64}  # 4 query heads of DIM


def attention_layer(kv_heads: int) -> torch.nn.Module:
    """The first attention layer of a tiny Llama with 4 query heads and `kv_heads` key/value heads."""
    return tiny_llama(num_key_value_heads=kv_heads, **TINY).model.layers[0].self_attn


def cached(lengths: list[int], kv_heads: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """One-token queries, keys and values of rows with `lengths` real tokens, left-padded together.

    The padding columns hold random values, as a cache's do (keys of pad tokens), and the keys and
    values are views of buffers with spare room, as the chunked cache hands them to attention.
    """
    generator = torch.Generator().manual_seed(seed)
    rows, width = len(lengths), max(lengths)
    query = torch.randn(rows, 4, 1, DIM, generator=generator)
    key = torch.randn(rows, kv_heads, width + 5, DIM, generator=generator)[:, :, :width]
    value = torch.randn(rows, kv_heads, width + 5, DIM, generator=generator)[:, :, :width]
    mask = torch.arange(width) >= torch.tensor([width - n for n in lengths])[:, None]
    return query, key, value, mask[:, None, None, :]


@pytest.mark.parametrize("kv_heads", [1, 2, 4])  # 4, 2 and 1 query heads per key/value head
def test_one_token_attention_equals_sdpa_over_a_padded_batch(kv_heads: int) -> None:
    layer = attention_layer(kv_heads)
    query, key, value, mask = cached([700, 3, 64, 513], kv_heads)
    ours, _ = row_attention_forward(layer, query, key, value, mask, scaling=DIM**-0.5)
    sdpa, _ = sdpa_attention_forward(layer, query, key, value, mask, scaling=DIM**-0.5)
    assert ours.shape == sdpa.shape == (4, 1, 4, DIM)
    torch.testing.assert_close(ours, sdpa, rtol=1e-5, atol=1e-6)
    # no mask: every cached column is the row's
    ours, _ = row_attention_forward(layer, query, key, value, None, scaling=DIM**-0.5)
    sdpa, _ = sdpa_attention_forward(layer, query, key, value, None, scaling=DIM**-0.5)
    torch.testing.assert_close(ours, sdpa, rtol=1e-5, atol=1e-6)


def test_a_row_gets_the_same_bits_alone_and_in_any_padded_batch() -> None:
    layer = attention_layer(2)
    for length in (1, 17, 600, 1100):
        query, key, value, _ = cached([length], 2, seed=length)
        alone, _ = row_attention_forward(layer, query, key, value, None, scaling=DIM**-0.5)
        for others in ([5], [length + 300, 40], [length, 2 * length + 7]):
            lengths = [*others[:1], length, *others[1:]]
            batch_query, batch_key, batch_value, mask = cached(lengths, 2, seed=len(lengths))
            width = max(lengths)
            batch_query[1] = query[0]
            batch_key[1, :, width - length :] = key[0]
            batch_value[1, :, width - length :] = value[0]
            batched, _ = row_attention_forward(
                layer, batch_query, batch_key, batch_value, mask, scaling=DIM**-0.5
            )
            assert torch.equal(batched[1], alone[0]), (length, lengths)


def prompt_states(lengths: list[int], kv_heads: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Queries, keys and values of prompts with `lengths` real tokens, left-padded, with their causal mask."""
    generator = torch.Generator().manual_seed(seed)
    rows, width = len(lengths), max(lengths)
    query = torch.randn(rows, 4, width, DIM, generator=generator)
    key, value = (torch.randn(rows, kv_heads, width, DIM, generator=generator) for _ in range(2))
    columns = torch.arange(width)
    padding = columns >= torch.tensor([width - n for n in lengths])[:, None]
    mask = padding[:, None, :] & (columns[:, None] >= columns[None, :])
    return query, key, value, mask[:, None]


def test_prompts_get_causal_sdpa_per_row_the_same_bits_alone_and_batched() -> None:
    layer = attention_layer(2)
    lengths = [600, 9, 130]
    query, key, value, mask = prompt_states(lengths, 2)
    ours, _ = row_attention_forward(layer, query, key, value, mask, scaling=DIM**-0.5)
    sdpa, _ = sdpa_attention_forward(layer, query, key, value, mask, scaling=DIM**-0.5)
    assert ours.shape == sdpa.shape == (3, 600, 4, DIM)
    for row, length in enumerate(lengths):
        real = slice(600 - length, None)
        torch.testing.assert_close(ours[row, real], sdpa[row, real], rtol=1e-5, atol=1e-6)
        assert not ours[row, : 600 - length].any()  # padding positions: zeros, never NaN
        alone, _ = row_attention_forward(
            layer, query[row : row + 1, :, real], key[row : row + 1, :, real],
            value[row : row + 1, :, real], None, scaling=DIM**-0.5,
        )  # fmt: skip
        assert torch.equal(alone[0], ours[row, real]), row


def test_other_masks_and_prompts_after_a_cache_go_to_transformers_sdpa() -> None:
    layer = attention_layer(2)
    query, key, value, mask = cached([40, 40, 40], 2)
    holed = mask.clone()
    holed[0, ..., 10:20] = False  # not left padding: a hole in the middle of a row
    ours, _ = row_attention_forward(layer, query, key, value, holed, scaling=DIM**-0.5)
    sdpa, _ = sdpa_attention_forward(layer, query, key, value, holed, scaling=DIM**-0.5)
    assert torch.equal(ours, sdpa)
    # four query tokens after 36 cached ones: not a fresh prompt
    query, key, value, mask = prompt_states([40, 30], 2)
    query, mask = query[:, :, -4:], mask[:, :, -4:]
    ours, _ = row_attention_forward(layer, query, key, value, mask, scaling=DIM**-0.5)
    sdpa, _ = sdpa_attention_forward(layer, query, key, value, mask, scaling=DIM**-0.5)
    assert torch.equal(ours, sdpa)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama (4 query heads sharing 2 key/value heads) saved like a checkpoint."""
    return save_checkpoint(tiny_llama(**TINY), tmp_path_factory.mktemp("tiny-llama"))


def decode(model, prompts: list[list[int]], steps: int) -> torch.Tensor:
    """The logits of the last of `steps` decoding steps of `prompts` batched together, fed the same tokens."""
    logits: list[torch.Tensor] = []
    hook = model.register_forward_hook(lambda _m, _a, output: logits.append(output.logits[:, -1]))
    request = LLMRequest.from_prompt("-", max_tokens=steps + 1)
    rows = [
        ActiveRow(i, request, len(p), None, forced=deque(range(300, 300 + steps)))
        for i, p in enumerate(prompts)
    ]
    batch = ContinuousBatch(model, pad_token_id=0)
    try:
        with torch.inference_mode():
            batch.admit(rows, prompts)
            for _ in range(steps):
                batch.step()
    finally:
        hook.remove()
    return logits[-1]


def test_the_local_provider_decodes_with_it_as_sdpa_would(tiny_model_dir: Path) -> None:
    model = load_causal_lm(tiny_model_dir).model
    assert model.config._attn_implementation == ROW_ATTENTION
    prompts = [list(range(100, 100 + n)) for n in (30, 7, 300)]
    ours = decode(model, prompts, steps=6)
    model.set_attn_implementation("sdpa")
    try:
        sdpa = decode(model, prompts, steps=6)
    finally:
        model.set_attn_implementation(ROW_ATTENTION)
    torch.testing.assert_close(ours, sdpa, rtol=1e-4, atol=1e-4)


def test_the_local_provider_decodes_a_row_bit_for_bit_alone_or_batched(
    tiny_model_dir: Path,
) -> None:
    model = load_causal_lm(tiny_model_dir).model
    prompts = [list(range(200, 200 + n)) for n in (12, 400, 90)]
    batched = decode(model, prompts, steps=5)
    for row, prompt in enumerate(prompts):
        assert torch.equal(decode(model, [prompt], steps=5)[0], batched[row]), row
