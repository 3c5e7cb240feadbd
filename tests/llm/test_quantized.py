"""The local provider's precisions (a bfloat16 model, int8 and float16-weight linear layers), on
a tiny random model, and JUDGEFORGE_LOCAL_PRECISION."""

from __future__ import annotations

import copy as copy_module
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from judgeforge.errors import UserError
from judgeforge.llm import LLMRequest, quantized
from judgeforge.llm.local import LocalChat, load_causal_lm
from judgeforge.llm.local_workers import MIN_CALLS_PER_WORKER
from judgeforge.llm.quantized import (
    PRECISION_ENV,
    Float16WeightLinear,
    Int8Linear,
    bfloat16_products_are_fast,
    chosen_precision,
    float16_weight_linears,
    float16_weights_available,
    int8_products_are_fast,
    quantize_linears,
)
from tests.support.commands import run_synthesis
from tests.support.tiny_judge import (
    WORDS,
    save_checkpoint,
    tiny_llama,
)

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
    ("features", "fast"),
    [
        ({"avx512_f": True, "amx_bf16": True, "amx_tile": True}, True),
        ({"avx512_f": True, "avx512_bf16": True}, False),  # not measured: the safe side
        ({"avx2": True, "fma3": True}, False),
    ],
)
def test_a_bfloat16_model_counts_as_fast_only_on_a_cpu_with_amx(
    features: dict[str, bool], fast: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: features)
    bfloat16_products_are_fast.cache_clear()
    try:
        assert bfloat16_products_are_fast() is fast
    finally:
        bfloat16_products_are_fast.cache_clear()


def _loaded_kinds(model: torch.nn.Module) -> set[Any]:
    """The kinds of linear layer in `model`, and the dtype of its plain ones' weights."""
    kinds: set[Any] = set()
    for module in model.modules():
        if isinstance(module, (Int8Linear, Float16WeightLinear)):
            kinds.add(type(module))
        elif isinstance(module, torch.nn.Linear):
            kinds.add(module.weight.dtype)
    return kinds


@pytest.mark.parametrize(
    ("bfloat16", "int8", "float16", "kinds", "line"),
    [
        (True, True, True, {torch.bfloat16}, "the whole model in bfloat16"),
        (False, True, True, {Int8Linear}, "linear layers in int8"),
        (False, False, True, {Float16WeightLinear}, "linear layers with float16 weights"),
        (False, False, False, {torch.float32}, "linear layers in float32"),
    ],
)
def test_the_local_model_loads_in_the_fastest_precision_this_cpu_has(
    bfloat16: bool,
    int8: bool,
    float16: bool,
    kinds: set[Any],
    line: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    monkeypatch.setattr(quantized, "bfloat16_products_are_fast", lambda: bfloat16)
    monkeypatch.setattr(quantized, "int8_products_are_fast", lambda: int8)
    monkeypatch.setattr(quantized, "float16_weights_available", lambda: float16)
    # a folder of its own, so load_causal_lm loads it afresh
    model_dir = save_checkpoint(tiny_llama(), tmp_path / "tiny-llama")
    with caplog.at_level(logging.INFO, logger="judgeforge.llm.local"):
        model = load_causal_lm(model_dir).model
    assert _loaded_kinds(model) == kinds
    assert f"local: {line}, the fastest this CPU has" in caplog.text


@pytest.mark.parametrize(
    ("chosen", "kinds", "warned"),
    [
        ("bfloat16", {torch.bfloat16}, "no bfloat16 matrix unit (AMX)"),
        ("int8", {Int8Linear}, "no int8 dot product"),
        ("float32", {torch.float32}, None),
    ],
)
def test_judgeforge_local_precision_picks_the_precision_and_warns_where_it_is_slow(
    chosen: str,
    kinds: set[Any],
    warned: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(PRECISION_ENV, chosen)
    # a CPU with none of the units: the fastest would be float16 weights
    monkeypatch.setattr(quantized, "bfloat16_products_are_fast", lambda: False)
    monkeypatch.setattr(quantized, "int8_products_are_fast", lambda: False)
    model_dir = save_checkpoint(tiny_llama(), tmp_path / "tiny-llama")
    with caplog.at_level(logging.INFO, logger="judgeforge.llm.local"):
        model = load_causal_lm(model_dir).model
    assert _loaded_kinds(model) == kinds
    said = [r for r in caplog.records if f"({PRECISION_ENV})" in r.getMessage()]
    assert len(said) == 1
    if warned is None:
        assert said[0].levelno == logging.INFO
    else:
        assert said[0].levelno == logging.WARNING and warned in said[0].getMessage()


@pytest.mark.parametrize("value", ["", "auto", " AUTO "])
def test_an_unset_or_auto_local_precision_leaves_the_choice_to_the_cpu(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PRECISION_ENV, value)
    assert chosen_precision() is None


def test_an_unknown_local_precision_names_the_variable_and_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PRECISION_ENV, "fp8")
    with pytest.raises(UserError, match=f"{PRECISION_ENV}='fp8' is not a precision") as raised:
        chosen_precision()
    assert "bfloat16, int8, float16, float32 or auto" in str(raised.value)


def test_float16_asked_of_a_torch_without_the_product_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PRECISION_ENV, "float16")
    monkeypatch.setattr(quantized, "float16_weights_available", lambda: False)
    with pytest.raises(UserError, match="needs fbgemm's float16-weight product"):
        chosen_precision()


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


def test_the_output_head_reads_a_contiguous_copy_of_the_last_positions(tmp_path: Path) -> None:
    # transformers hands it a strided view of each row's last position; torch multiplies such a
    # [rows, 1, hidden] view by copying the head's weight once per row
    model_dir = save_checkpoint(tiny_llama(), tmp_path / "tiny-llama")
    chat = LocalChat(model_dir=model_dir, batch_size=2, show_progress=False)
    seen: list[bool] = []
    head = load_causal_lm(model_dir).model.get_output_embeddings()
    head.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0].is_contiguous()))
    prompts = ("Write one long sentence about the weather today.", "Write a word.")
    chat.generate_batch([LLMRequest.from_prompt(p, max_tokens=3, seed=1) for p in prompts])
    assert len(seen) >= 3 and all(seen), seen  # a prefill, then decoding steps


def test_kedro_run_decodes_in_the_precision_judgeforge_local_precision_names(
    project_copy: Path, rambling_model_cache: Path
) -> None:
    total = 2 * MIN_CALLS_PER_WORKER  # the fewest calls two processes share
    env = {PRECISION_ENV: "bfloat16"}
    result = run_synthesis(project_copy, rambling_model_cache, total, {"local_workers": 2}, env)
    output = result.stdout + result.stderr
    # said as a warning on a CPU without AMX, as a plain line on one with it
    assert f"local: the whole model in bfloat16 ({PRECISION_ENV})" in output
    assert "local: decoding attention by SDPA (judgeforge's kernel reads float32 caches)" in output
    assert "local: decoding in 2 processes, 1 torch thread(s) each" in output
    rows = pd.read_parquet(project_copy / "data" / "03_primary" / "synthetic_examples.parquet")
    assert len(rows) == total
    words = {word.lstrip("Ġ") for word in WORDS if word != "."}
    assert all(set(t.replace(".", " ").lower().split()) <= words for t in rows["text"])


def test_an_unknown_local_precision_fails_the_run_naming_the_variable(
    project_copy: Path, rambling_model_cache: Path
) -> None:
    result = run_synthesis(
        project_copy, rambling_model_cache, 2, env={PRECISION_ENV: "fp8"}, succeeds=False
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"{PRECISION_ENV}='fp8' is not a precision of the local model" in result.stderr
