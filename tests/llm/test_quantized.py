"""Int8 and float16-weight linear layers of the local provider, on a tiny random model."""

from __future__ import annotations

import copy as copy_module
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from judgeforge.llm import quantized
from judgeforge.llm.local import load_causal_lm
from judgeforge.llm.quantized import (
    Float16WeightLinear,
    Int8Linear,
    float16_weight_linears,
    float16_weights_available,
    int8_products_are_fast,
    quantize_linears,
)
from tests.support.tiny_judge import save_checkpoint, tiny_llama

needs_float16 = pytest.mark.skipif(
    not float16_weights_available(), reason="this torch build has no float16-weight product"
)


@pytest.mark.parametrize(
    ("replace", "layer", "largest_error"),
    [
        pytest.param(quantize_linears, Int8Linear, 0.05, id="int8"),
        pytest.param(
            float16_weight_linears, Float16WeightLinear, 0.005, marks=needs_float16, id="float16"
        ),
    ],
)
def test_every_linear_layer_is_replaced_and_logits_stay_close(
    replace: Callable[[Any], int], layer: type, largest_error: float
) -> None:
    model = tiny_llama(vocab_size=256, hidden_size=64, intermediate_size=128)
    ids = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        float_logits = model(input_ids=ids).logits
        replaced = replace(model)
        new_logits = model(input_ids=ids).logits
    assert replaced == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the output head
    assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert sum(isinstance(m, layer) for m in model.modules()) == replaced
    error = (new_logits - float_logits).abs().max() / float_logits.abs().max()
    assert 0 < error < largest_error


def test_a_row_gets_the_same_output_alone_and_in_any_batch() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 20)
    int8 = Int8Linear(layer)
    # rows of very different sizes: with one scale per batch the small rows would lose precision
    rows = torch.randn(5, 48) * torch.tensor([[1.0], [100.0], [0.01], [3.0], [7.0]])
    with torch.inference_mode():
        together, expected = int8(rows), layer(rows)
        for index in range(len(rows)):
            assert torch.equal(int8(rows[index : index + 1]), together[index : index + 1])
    row_error = (together - expected).abs().amax(dim=1) / expected.abs().amax(dim=1)
    assert row_error.max() < 0.05


def _unshared_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The model with every Int8Linear computing on its own (no shared products)."""
    copy = copy_module.deepcopy(model)
    for module in copy.modules():
        if isinstance(module, Int8Linear):
            module.shared = None
            module.weight_t = module.weight_t.contiguous()
    return copy


def test_query_key_value_and_gate_up_share_one_product_and_the_model_answers_as_unshared() -> None:
    model = tiny_llama(vocab_size=256, hidden_size=64, intermediate_size=128)
    ids = torch.randint(0, 256, (3, 12), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        quantize_linears(model)
        shared_logits = model(input_ids=ids).logits
        unshared_logits = _unshared_copy(model)(input_ids=ids).logits
    attention, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    assert attention.q_proj.shared is attention.k_proj.shared is attention.v_proj.shared
    assert mlp.gate_proj.shared is mlp.up_proj.shared is not None
    assert attention.o_proj.shared is None and mlp.down_proj.shared is None
    # one copy of the weights: the siblings' matrices are views of the shared one
    shared_storage = attention.q_proj.shared.weight_t.untyped_storage().data_ptr()
    assert attention.v_proj.weight_t.untyped_storage().data_ptr() == shared_storage
    assert torch.equal(shared_logits, unshared_logits)


def test_a_sibling_called_on_another_tensor_computes_its_own_output() -> None:
    torch.manual_seed(3)
    parent = torch.nn.Module()
    parent.q_proj, parent.k_proj, parent.v_proj = (torch.nn.Linear(16, n) for n in (16, 8, 8))
    alone = {name: Int8Linear(getattr(parent, name)) for name in ("q_proj", "k_proj", "v_proj")}
    quantize_linears(parent)
    first, second = torch.randn(4, 16), torch.randn(2, 16)
    with torch.inference_mode():
        query = parent.q_proj(first)
        key_of_second = parent.k_proj(second)  # not the tensor the group computed for
        value_of_first = parent.v_proj(first)
        value_of_first_again = parent.v_proj(first)  # its columns were already taken
        assert torch.equal(query, alone["q_proj"](first))
        assert torch.equal(key_of_second, alone["k_proj"](second))
        assert torch.equal(value_of_first, alone["v_proj"](first))
        assert torch.equal(value_of_first_again, alone["v_proj"](first))


def test_threads_sharing_a_model_never_take_each_others_outputs() -> None:
    torch.manual_seed(4)
    parent = torch.nn.Module()
    parent.gate_proj, parent.up_proj = torch.nn.Linear(16, 32), torch.nn.Linear(16, 32)
    alone = Int8Linear(parent.up_proj)
    quantize_linears(parent)
    mine, theirs = torch.randn(3, 16), torch.randn(3, 16)
    with torch.inference_mode():
        parent.gate_proj(mine)  # this thread's group output now waits for up_proj
        other = threading.Thread(target=lambda: parent.gate_proj(theirs))
        other.start()
        other.join()
        assert torch.equal(parent.up_proj(mine), alone(mine))


@pytest.mark.parametrize(
    ("features", "fast"),
    [
        ({"avx2": True, "fma3": True}, False),  # the AMD EPYC measured: int8 ~50 times slower
        ({"avx2": True, "avx_vnni": True}, False),  # not measured: the safe side
        ({"avx512_f": True, "avx512_vnni": True}, True),
        ({"avx512_f": True, "amx_int8": True, "amx_tile": True}, True),
        ({"avx512_f": True, "avx512_vnni": False}, False),
    ],
)
def test_int8_products_count_as_fast_only_on_a_cpu_with_an_int8_dot_product(
    features: dict[str, bool], fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: features)
    int8_products_are_fast.cache_clear()
    try:
        assert int8_products_are_fast() is fast
    finally:
        int8_products_are_fast.cache_clear()


@pytest.mark.parametrize(
    ("fast", "float16", "layer", "line"),
    [
        (True, True, Int8Linear, "in int8"),
        (False, True, Float16WeightLinear, "with float16 weights"),
        (False, False, torch.nn.Linear, "in float32"),
    ],
)
def test_the_local_model_loads_in_int8_where_fast_else_with_float16_weights_where_available(
    fast: bool,
    float16: bool,
    layer: type,
    line: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(quantized, "int8_products_are_fast", lambda: fast)
    monkeypatch.setattr(quantized, "float16_weights_available", lambda: float16)
    # a folder of its own, so load_causal_lm loads it afresh
    model_dir = save_checkpoint(tiny_llama(), tmp_path / "tiny-llama")
    with caplog.at_level(logging.INFO, logger="judgeforge.llm.local"):
        model = load_causal_lm(model_dir).model
    kinds = {type(m) for m in model.modules()} & {Int8Linear, Float16WeightLinear, torch.nn.Linear}
    assert kinds == {layer}
    assert f"local: linear layers {line}" in caplog.text


@needs_float16
def test_a_float16_weight_layer_computes_the_float32_product_of_its_rounded_weight() -> None:
    torch.manual_seed(0)
    layer = torch.nn.Linear(48, 20)
    layer.weight.data[0, 0] = 1 + 2**-12  # float16 has 10 bits of fraction: this rounds to 1
    half = Float16WeightLinear(layer)
    inputs = torch.randn(2, 3, 48)  # any leading shape
    rounded = torch.nn.functional.linear(inputs, layer.weight.half().float(), layer.bias)
    with torch.inference_mode():
        out = half(inputs)
    assert out.shape == (2, 3, 20) and out.dtype == torch.float32
    torch.testing.assert_close(out, rounded, rtol=1e-5, atol=1e-5)
    layer.bias = None
    unit = torch.zeros(1, 48)
    unit[0, 0] = 1.0
    with torch.inference_mode():
        # the rounded weight, not the float32 one
        assert Float16WeightLinear(layer)(unit)[0, 0] == 1.0


def test_float16_weights_count_as_unavailable_where_torch_lacks_the_product(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def missing(*args: object) -> None:
        raise RuntimeError(
            "Didn't find engine for operation quantized::linear_prepack_fp16 NoQEngine"
        )

    monkeypatch.setattr(torch.ops.quantized, "linear_prepack_fp16", missing)
    float16_weights_available.cache_clear()
    try:
        assert float16_weights_available() is False
    finally:
        float16_weights_available.cache_clear()
