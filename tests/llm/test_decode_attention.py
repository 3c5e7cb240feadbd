"""judgeforge's decoding attention: SDPA's result, on the cached views the local provider holds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from judgeforge.llm import LLMRequest, decode_attention
from judgeforge.llm.decode_attention import DECODE_ATTENTION, decode_attention_forward
from judgeforge.llm.local import LocalChat, load_causal_lm
from judgeforge.llm.local_workers import torch_threads
from tests.support.tiny_judge import save_checkpoint, tiny_llama

ROWS, KV_HEADS, GROUP, DIM, TOKENS = 5, 3, 3, 16, 37
ROOT = Path(__file__).resolve().parents[2]


class GroupedAttention(torch.nn.Module):
    """What transformers' attention functions read off a Llama attention module."""

    num_key_value_groups = GROUP
    is_causal = True


@pytest.fixture
def kernel_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The number of rows of each call that reached the kernel."""
    calls: list[int] = []
    kernel = decode_attention._attend

    def counted(query, *args):
        calls.append(query.shape[0])
        return kernel(query, *args)

    monkeypatch.setattr(decode_attention, "_attend", counted)
    # the kernel takes the tiny contexts of these tests
    monkeypatch.setattr(decode_attention, "KERNEL_MIN_TOKENS", 1)
    with torch_threads(1):
        yield calls


def cached_views(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys and values as a chunked cache hands them after rows left: views into larger buffers,
    starting past the first row and token."""
    generator = torch.Generator().manual_seed(seed)
    stores = torch.randn(2, ROWS + 2, KV_HEADS, TOKENS + 20, DIM, generator=generator)
    return stores[0, 1 : ROWS + 1, :, 3 : TOKENS + 3], stores[1, 1 : ROWS + 1, :, 3 : TOKENS + 3]


def left_padding(rows: int, tokens: int) -> torch.Tensor:
    """transformers' boolean decoding mask [rows, 1, 1, tokens]: row i padded by 4·i tokens."""
    keep = torch.ones(rows, tokens, dtype=torch.bool)
    for row in range(rows):
        keep[row, : 4 * row] = False
    return keep[:, None, None, :]


@pytest.mark.parametrize("masked", [True, False])
def test_a_decoding_step_gets_sdpa_s_attention_from_the_kernel(
    kernel_calls: list[int], masked: bool
) -> None:
    keys, values = cached_views(seed=1)
    query = torch.randn(ROWS, KV_HEADS * GROUP, 1, DIM)
    mask = left_padding(ROWS, TOKENS) if masked else None
    module = GroupedAttention().eval()
    ours, _ = decode_attention_forward(module, query, keys, values, mask, scaling=0.3)
    expected, _ = sdpa_attention_forward(module, query, keys, values, mask, scaling=0.3)
    assert kernel_calls == [ROWS]
    assert ours.shape == expected.shape == (ROWS, 1, KV_HEADS * GROUP, DIM)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "case", ["prefill", "two threads", "float64", "float mask", "training", "short context"]
)
def test_other_calls_take_sdpa_s_path_unchanged(
    kernel_calls: list[int], case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case == "short context":
        monkeypatch.setattr(decode_attention, "KERNEL_MIN_TOKENS", TOKENS + 1)
    keys, values = cached_views(seed=2)
    query = torch.randn(ROWS, KV_HEADS * GROUP, 2 if case == "prefill" else 1, DIM)
    mask = left_padding(ROWS, TOKENS).expand(ROWS, 1, query.shape[2], TOKENS)
    module = GroupedAttention().train(case == "training")
    if case == "float64":
        query, keys, values = query.double(), keys.double(), values.double()
    if case == "float mask":
        mask = torch.zeros(mask.shape).masked_fill(~mask, float("-inf"))
    with torch_threads(2 if case == "two threads" else 1):
        ours, _ = decode_attention_forward(module, query, keys, values, mask)
        expected, _ = sdpa_attention_forward(module, query, keys, values, mask)
    assert kernel_calls == []
    assert torch.equal(ours, expected)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama, 4 query heads on 2 key-value heads, saved like a real checkpoint."""
    return save_checkpoint(tiny_llama(), tmp_path_factory.mktemp("tiny-llama"))


def test_the_local_provider_decodes_with_the_kernel_as_with_sdpa(
    tiny_model_dir: Path, kernel_calls: list[int]
) -> None:
    requests = [
        LLMRequest.from_prompt(prompt, max_tokens=budget)
        for prompt, budget in (
            ("Short.", 5),
            ("A much longer prompt than the first one, padded on the left.", 30),
            ("Joins later with its own length.", 12),
        )
    ]
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=2, show_progress=False)
    model = load_causal_lm(tiny_model_dir).model
    assert model.config._attn_implementation == DECODE_ATTENTION
    ours = chat.generate_batch(requests)
    assert kernel_calls, "no decoding step reached the kernel"
    model.set_attn_implementation("sdpa")
    try:
        expected = chat.generate_batch(requests)
    finally:
        model.set_attn_implementation(DECODE_ATTENTION)
    assert [answer.text for answer in ours] == [answer.text for answer in expected]


def test_the_kernel_compiles_per_process_where_numba_has_nowhere_to_keep_it(
    tmp_path: Path,
) -> None:
    # numba raises at import where no cache locator applies (a read-only install and home);
    # ZipCacheLocator alone applies to no file on disk
    script = tmp_path / "attend.py"
    script.write_text(
        "import torch\n"
        "from transformers.integrations.sdpa_attention import sdpa_attention_forward\n"
        "from judgeforge.llm import decode_attention\n"
        "from tests.llm.test_decode_attention import GroupedAttention, cached_views\n"
        "torch.set_num_threads(1)\n"
        "decode_attention.KERNEL_MIN_TOKENS = 1\n"
        "keys, values = cached_views(seed=3)\n"
        "query = torch.randn(keys.shape[0], 9, 1, keys.shape[-1])\n"
        "module = GroupedAttention().eval()\n"
        "ours, _ = decode_attention.decode_attention_forward(module, query, keys, values, None)\n"
        "expected, _ = sdpa_attention_forward(module, query, keys, values, None)\n"
        "torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)\n"
        "assert decode_attention._attend.signatures, 'the kernel did not run'\n"
        "print(type(decode_attention._attend._cache).__name__)\n"
    )
    env = {**os.environ, "NUMBA_CACHE_LOCATOR_CLASSES": "ZipCacheLocator"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "NullCache"
