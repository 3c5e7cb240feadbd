"""The local provider's chunked KV cache: the same keys and values as transformers' own, written in place."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from judgeforge.llm.kv_cache import CHUNK_TOKENS, ChunkedLayer, chunked_cache, stacked_cache


def _states(generator: torch.Generator, tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random keys and values for 2 rows, 3 heads of 4 dimensions."""
    return (
        torch.randn(2, 3, tokens, 4, generator=generator),
        torch.randn(2, 3, tokens, 4, generator=generator),
    )


def test_a_chunked_layer_holds_what_a_dynamic_layer_holds_across_chunks() -> None:
    generator = torch.Generator().manual_seed(0)
    chunked, dynamic = ChunkedLayer(), DynamicLayer()
    steps = [_states(generator, CHUNK_TOKENS - 3)] + [_states(generator, 1) for _ in range(8)]
    for keys, values in steps:
        got, expected = chunked.update(keys, values), dynamic.update(keys, values)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert chunked.get_seq_length() == dynamic.get_seq_length() == CHUNK_TOKENS + 5


def test_a_decoding_step_writes_in_place_until_the_chunk_is_full() -> None:
    generator = torch.Generator().manual_seed(1)
    layer = ChunkedLayer()
    layer.update(*_states(generator, CHUNK_TOKENS - 2))
    start = layer.keys.data_ptr()
    layer.update(*_states(generator, 1))
    layer.update(*_states(generator, 1))
    assert layer.keys.data_ptr() == start  # no copy of the cached tokens
    layer.update(*_states(generator, 1))
    assert layer.keys.data_ptr() != start  # full: one copy into a buffer with a new chunk of room


def test_a_cache_built_from_tensors_holds_them_and_grows() -> None:
    generator = torch.Generator().manual_seed(2)
    keys, values = _states(generator, 5)
    cache = chunked_cache([(keys, values), (keys + 1, values + 1)])
    assert [torch.equal(layer.keys, k) for layer, k in zip(cache.layers, (keys, keys + 1))] == [
        True,
        True,
    ]
    more_keys, more_values = _states(generator, 1)
    cache.update(more_keys, more_values, layer_idx=0)
    assert torch.equal(cache.layers[0].keys, torch.cat([keys, more_keys], dim=-2))
    assert cache.get_seq_length() == 6


def test_a_stacked_cache_holds_each_part_left_padded_and_grows_in_place() -> None:
    generator = torch.Generator().manual_seed(3)
    short, long = _states(generator, 3), _states(generator, 5)
    parts = [chunked_cache([short, short]), chunked_cache([long, long])]
    cache = stacked_cache(parts, width=5)
    padded = torch.cat([torch.zeros(2, 3, 2, 4), short[0]], dim=-2)
    assert torch.equal(cache.layers[1].keys, torch.cat([padded, long[0]]))
    assert cache.get_seq_length() == 5
    start = cache.layers[0].keys.data_ptr()
    cache.update(*(torch.ones(4, 3, 1, 4),) * 2, layer_idx=0)
    assert cache.layers[0].keys.data_ptr() == start  # written into the room the buffer has
    assert torch.equal(cache.layers[0].values[:, :, -1], torch.ones(4, 3, 4))


def test_keeping_rows_drops_the_others_and_leading_tokens_without_a_new_buffer() -> None:
    generator = torch.Generator().manual_seed(4)
    keys, values = torch.randn(5, 3, 6, 4, generator=generator), torch.randn(5, 3, 6, 4)
    layer = chunked_cache([(keys, values)]).layers[0]
    buffer = layer.keys.untyped_storage().data_ptr()
    layer.keep_rows([1, 3, 4], first_token=2)
    assert torch.equal(layer.keys, keys[[1, 3, 4], :, 2:])
    assert torch.equal(layer.values, values[[1, 3, 4], :, 2:])
    assert layer.keys.untyped_storage().data_ptr() == buffer
    more = torch.randn(3, 3, 1, 4, generator=generator)
    got_keys, _ = layer.update(more, more)
    assert torch.equal(got_keys, torch.cat([keys[[1, 3, 4], :, 2:], more], dim=-2))
    assert layer.keys.untyped_storage().data_ptr() == buffer  # the freed room is reused
