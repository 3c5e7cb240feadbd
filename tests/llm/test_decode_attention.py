"""judgeforge's decoding attention: SDPA's result, on the cached views the local provider holds,
and through `kedro run` on long seed rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from judgeforge.llm import LLMRequest, decode_attention
from judgeforge.llm.decode_attention import (
    ATTENTION_ENV,
    DECODE_ATTENTION,
    KERNEL_MIN_TOKENS,
    decode_attention_forward,
)
from judgeforge.llm.local import LocalChat, load_causal_lm
from judgeforge.llm.local_workers import MIN_CALLS_PER_WORKER, torch_threads
from judgeforge.llm.quantized import PRECISION_ENV
from tests.conftest import copy_project
from tests.support.commands import run_synthesis
from tests.support.tiny_judge import (
    WORDS,
    embedded_tokenizer,
    save_checkpoint,
    save_model_cache,
    tiny_llama,
)

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


def test_a_padding_position_adds_nothing_however_large_its_value(kernel_calls: list[int]) -> None:
    # the kernel's exp gives a masked token exactly 0, not a tiny weight that a huge value
    # (what a buffer might hold there) would turn into a real share
    keys, values = cached_views(seed=2)
    query = torch.randn(ROWS, KV_HEADS * GROUP, 1, DIM)
    mask = left_padding(ROWS, TOKENS)
    module = GroupedAttention().eval()
    padded = ~mask[:, 0, 0, :]
    outputs = []
    for fill in (0.0, 1e36):
        values.transpose(1, 2)[padded] = fill
        outputs.append(decode_attention_forward(module, query, keys, values, mask)[0])
    assert kernel_calls == [ROWS, ROWS]
    assert torch.equal(outputs[0], outputs[1])
    expected, _ = sdpa_attention_forward(module, query, keys, values, mask)
    torch.testing.assert_close(outputs[1], expected, rtol=1e-5, atol=1e-6)


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
    tiny_model_dir: Path, kernel_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    requests = [
        LLMRequest.from_prompt(prompt, max_tokens=budget)
        for prompt, budget in (
            ("Short.", 5),
            ("A much longer prompt than the first one, padded on the left.", 30),
            ("Joins later with its own length.", 12),
        )
    ]
    # the kernel takes float32 steps; a bfloat16 model (the default on a CPU with AMX) decodes
    # by SDPA
    monkeypatch.setenv(PRECISION_ENV, "float32")
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


# words per seed text, drawn in this range: five texts in a prompt take well over
# KERNEL_MIN_TOKENS tokens, and prompts of unlike lengths decode together, left-padded
SEED_WORDS = (20, 240)
KERNEL_JOB = re.compile(r"local: (\d+) calls in (\d+) forward passes, (\d+) of their layers'")


def attentive_llama(words: list[int], seed: int = 0) -> torch.nn.Module:
    """A 2-layer tiny Llama (4 query heads on 2 key-value heads) that writes only `words`, which of
    them hanging on its attention over the whole context.

    Every embedding is 1 in its first dimension and small random numbers past its second; the
    attention writes into the second dimension alone, the MLPs add nothing. Its query and key
    products are small, so it spreads over the whole context: a padding position that a row
    should not see would move that row's words. The final norm keeps the first two dimensions;
    the output head gives `words` 4 plus a random multiple of the second, every other token -4.
    """
    hidden = 64
    model = tiny_llama(
        seed, hidden_size=hidden, intermediate_size=hidden, max_position_embeddings=4096
    )
    generator = torch.Generator().manual_seed(seed)

    def random(*shape: int, scale: float) -> torch.Tensor:
        return torch.randn(shape, generator=generator) * scale

    with torch.no_grad():
        embeddings = model.model.embed_tokens.weight
        embeddings.copy_(random(*embeddings.shape, scale=0.1))
        embeddings[:, 0], embeddings[:, 1] = 1.0, 0.0
        for layer in model.model.layers:
            attention = layer.self_attn
            for product in (attention.q_proj, attention.k_proj):
                product.weight.copy_(random(*product.weight.shape, scale=0.5 / hidden**0.5))
            attention.v_proj.weight.copy_(
                random(*attention.v_proj.weight.shape, scale=hidden**-0.5)
            )
            attention.o_proj.weight.zero_()
            attention.o_proj.weight[1] = random(hidden, scale=hidden**-0.5)
            layer.mlp.down_proj.weight.zero_()
        model.model.norm.weight.zero_()
        model.model.norm.weight[:2] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, 0] = -4.0
        model.lm_head.weight[words, 0] = 4.0
        model.lm_head.weight[words, 1] = random(len(words), scale=0.1)
    return model


@pytest.fixture(scope="module")
def attentive_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A judgeforge cache whose embedded model is `attentive_llama` over WORDS."""
    tokenizer = embedded_tokenizer()
    model = attentive_llama(tokenizer.convert_tokens_to_ids(list(WORDS)))
    return save_model_cache(model, tmp_path_factory.mktemp("judgeforge-cache"), tokenizer)


def write_long_seed_rows(project_copy: Path) -> None:
    """Give every demo seed row a text of WORDS, in sentences, of a length in SEED_WORDS, its
    label kept."""
    path = project_copy / "data" / "01_raw" / "customer_messages.csv"
    seeds = pd.read_csv(path)
    generator = torch.Generator().manual_seed(7)
    plain = [word.lstrip("Ġ") for word in WORDS if word != "."]

    def text() -> str:
        length = int(torch.randint(*SEED_WORDS, (1,), generator=generator))
        picks = torch.randint(len(plain), (length,), generator=generator).tolist()
        words = [plain[i] + ("." if (n + 1) % 10 == 0 else "") for n, i in enumerate(picks)]
        return " ".join(words).capitalize()

    seeds["text"] = [text() for _ in range(len(seeds))]
    seeds.to_csv(path, index=False)


def synthetic_texts(project_copy: Path) -> list[str]:
    """The texts of the run's synthetic rows, in their order."""
    rows = pd.read_parquet(project_copy / "data" / "03_primary" / "synthetic_examples.parquet")
    return rows["text"].tolist()


def local_jobs(output: str) -> list[tuple[int, int, int]]:
    """(calls, forward passes, layer calls by the kernel) of each local job a run's log reports."""
    return [
        (int(calls), int(passes), int(by_kernel))
        for calls, passes, by_kernel in KERNEL_JOB.findall(output)
    ]


def test_kedro_run_on_long_rows_decodes_through_the_kernel_as_through_sdpa(
    tmp_path: Path, attentive_model_cache: Path
) -> None:
    total = 2 * MIN_CALLS_PER_WORKER  # the fewest calls two processes share
    llm = {"local_workers": 2}
    runs = {}
    # a project each: a run keeps the answers it paid for, and a second run in the same
    # project would take them rather than decode
    for attention in ("judgeforge", "sdpa"):
        project = copy_project(tmp_path / attention)
        write_long_seed_rows(project)
        # float32 layers: the kernel takes float32 steps, and a bfloat16 model (the default on
        # a CPU with AMX) decodes by SDPA
        env = {ATTENTION_ENV: attention, PRECISION_ENV: "float32"}
        result = run_synthesis(project, attentive_model_cache, total, llm, env)
        runs[attention] = (result.stdout + result.stderr, synthetic_texts(project))
    output, texts = runs["judgeforge"]
    assert (
        f"decoding attention by judgeforge's kernel on contexts of {KERNEL_MIN_TOKENS}+" in output
    )
    assert "local: decoding in 2 processes, 1 torch thread(s) each" in output
    jobs = local_jobs(output)
    assert sum(calls for calls, _, _ in jobs) == total, output[-3000:]
    # two layers a pass; prompts pass KERNEL_MIN_TOKENS, so decoding steps take the kernel
    assert 0 < sum(by_kernel for _, _, by_kernel in jobs) <= 2 * sum(p for _, p, _ in jobs), jobs
    assert len(texts) == total
    plain = {word.lstrip("Ġ") for word in WORDS if word != "."}
    assert all(set(text.replace(".", " ").lower().split()) <= plain for text in texts), texts

    output, sdpa_texts = runs["sdpa"]
    assert f"decoding attention by SDPA ({ATTENTION_ENV})" in output
    jobs = local_jobs(output)
    assert sum(calls for calls, _, _ in jobs) == total, output[-3000:]
    assert all(by_kernel == 0 for _, _, by_kernel in jobs), jobs
    # the same calls, seeds and answers: the kernel gives SDPA's attention to float32 rounding
    assert sdpa_texts == texts


def test_an_unknown_local_attention_fails_the_run_naming_the_variable(
    project_copy: Path, attentive_model_cache: Path
) -> None:
    result = run_synthesis(
        project_copy, attentive_model_cache, 2, env={ATTENTION_ENV: "flash"}, succeeds=False
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert f"{ATTENTION_ENV}='flash' is not an attention for the local model" in result.stderr
