"""A KV cache that grows in chunks and writes each decoding step in place.

transformers' `DynamicLayer` appends a step's keys and values with `torch.cat`, copying every
row's whole context at every step: at 8 rows × 1,200 tokens of context that copy was 61 % of a
SmolLM2 decoding step on one CPU thread (profile in BENCHMARKS.md, issue 15). Here each layer
keeps buffers with room for up to CHUNK_TOKENS more tokens and hands attention views of them,
so a step writes one column; the buffers are copied only when they fill up. Values, shapes and
masks are what `DynamicLayer` would give, so answers do not change.

Rows joining a batch are written once into new buffers (`stacked_cache`), and rows leaving it
are dropped by moving the others down within the buffers they hold (`ChunkedLayer.keep_rows`).
Copying the whole context into fresh tensors there (pad, concatenate, copy into room) took a
quarter of a long-text synthesis job on a 2-core VM, where first touching fresh memory costs
~10 ms per MB (BENCHMARKS.md, issue 15, thirteenth round).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers.cache_utils import Cache, DynamicLayer

CHUNK_TOKENS = 256  # spare room per growth: at most ~12 MB of SmolLM2 keys and values per row


class ChunkedLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values are views of preallocated buffers, filled in place."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.device = key_states.device
        self.keys = self._key_store = key_states[:, :, :0]
        self.values = self._value_store = value_states[:, :, :0]
        self.is_initialized = True

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new keys and values after the cached ones; return views of all of them."""
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.keys.shape[-2]
        end = length + key_states.shape[-2]
        # `keys` stops being a prefix of the buffer when an inherited method (crop aside) replaced it
        if end > self._key_store.shape[-2] or self.keys.data_ptr() != self._key_store.data_ptr():
            self._key_store = _with_room(self.keys, end)
            self._value_store = _with_room(self.values, end)
        self._key_store[:, :, length:end] = key_states
        self._value_store[:, :, length:end] = value_states
        self.keys = self._key_store[:, :, :end]
        self.values = self._value_store[:, :, :end]
        return self.keys, self.values

    def keep_rows(self, rows: Sequence[int], first_token: int) -> None:
        """Keep only `rows` (ascending) and the cached tokens from `first_token` on; the kept rows
        move down within the buffers, so nothing is allocated."""
        length = self.keys.shape[-2]
        if self.keys.data_ptr() != self._key_store.data_ptr():
            self._key_store, self._value_store = self.keys, self.values
        for store in (self._key_store, self._value_store):
            for slot, row in enumerate(rows):
                # slot < row, and slots fill in ascending order: a source is read before any
                # later slot could overwrite it
                if slot != row:
                    store[slot, :, first_token:length] = store[row, :, first_token:length]
        self._key_store = self._key_store[: len(rows), :, first_token:]
        self._value_store = self._value_store[: len(rows), :, first_token:]
        self.keys = self._key_store[:, :, : length - first_token]
        self.values = self._value_store[:, :, : length - first_token]


def _with_room(cached: torch.Tensor, needed: int) -> torch.Tensor:
    """A buffer holding `cached` with room for `needed` tokens rounded up to whole chunks."""
    batch, heads, length, head_dim = cached.shape
    store = cached.new_empty(batch, heads, _capacity(needed), head_dim)
    store[:, :, :length] = cached
    return store


def _capacity(needed: int) -> int:
    """`needed` tokens rounded up to whole chunks."""
    return -(-needed // CHUNK_TOKENS) * CHUNK_TOKENS


def _stacked_buffer(parts: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    """One buffer with room to grow holding `parts` one after another along the rows, each
    left-padded with zeros to `width` tokens; each part is copied once."""
    first = parts[0]
    store = first.new_empty(
        sum(part.shape[0] for part in parts), first.shape[1], _capacity(width), first.shape[3]
    )
    start = 0
    for part in parts:
        end, padding = start + part.shape[0], width - part.shape[-2]
        store[start:end, :, :padding] = 0
        store[start:end, :, padding:width] = part
        start = end
    return store


def chunked_cache(layers: Sequence[tuple[torch.Tensor, torch.Tensor]] = ()) -> Cache:
    """A cache of ChunkedLayers holding the given (keys, values) per layer; empty when none given."""
    if not layers:
        return Cache(layer_class_to_replicate=ChunkedLayer)
    built = []
    for keys, values in layers:
        layer = ChunkedLayer()
        layer.update(keys, values)
        built.append(layer)
    return Cache(layers=built)


def stacked_cache(parts: Sequence[Cache], width: int) -> Cache:
    """A cache of ChunkedLayers holding the rows of every cache in `parts`, in order, each
    left-padded with zeros to `width` tokens."""
    built = []
    for same_layer in zip(*(part.layers for part in parts)):
        layer = ChunkedLayer()
        layer.device = same_layer[0].keys.device
        layer._key_store = _stacked_buffer([part.keys for part in same_layer], width)
        layer._value_store = _stacked_buffer([part.values for part in same_layer], width)
        layer.keys = layer._key_store[:, :, :width]
        layer.values = layer._value_store[:, :, :width]
        layer.is_initialized = True
        built.append(layer)
    return Cache(layers=built)
