"""A local model that never ends its text: it stops at a sentence end past a real text's length,
and what runs to its budget still delivers whole sentences; through the door, in two processes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from judgeforge import progress
from judgeforge.llm import LLMRequest
from judgeforge.llm.local import LocalChat
from judgeforge.llm.local_workers import MIN_CALLS_PER_WORKER
from judgeforge.llm.quantized import PRECISIONS, fastest_precision
from judgeforge.models.embedded import EMBEDDED_MODEL_NAME
from tests.support.commands import run_synthesis
from tests.support.tiny_judge import WORDS, embedded_tokenizer, save_model_cache, scoring_llama

# the fewest one-example calls that llm.local_workers: 2 deals to a second process
TOTAL = 2 * MIN_CALLS_PER_WORKER


def test_a_rambling_answer_ends_at_its_first_sentence_end_past_its_length(
    rambling_model_cache: Path,
) -> None:
    chat = LocalChat(model_dir=rambling_model_cache / EMBEDDED_MODEL_NAME, show_progress=False)
    ask = {"temperature": 0.9, "max_tokens": 120}
    seeds = range(4)
    ended = chat.generate_batch(
        [LLMRequest.from_prompt("Write.", seed=s, field_chars=(60,), **ask) for s in seeds]
    )
    ran_on = chat.generate_batch([LLMRequest.from_prompt("Write.", seed=s, **ask) for s in seeds])
    for early, full in zip(ended, ran_on):
        assert early.finish_reason == "stop" and early.text.endswith("."), early.text
        # the sentence before the last one ends within the first 60 characters
        assert len(early.text.rstrip(".").rpartition(".")[0]) < 60, early.text
        # the same seeded tokens: the early answer is where the full one would have ended first
        assert full.text.startswith(early.text)
        assert full.finish_reason == "length" and full.output_tokens == ask["max_tokens"]
        assert early.output_tokens < full.output_tokens


def longest_real_texts(project_copy: Path) -> pd.Series:
    """The longest demo text of each class, in characters, by label."""
    real = pd.read_csv(project_copy / "data" / "01_raw" / "customer_messages.csv")
    return real.groupby(real["label"].astype(str))["text"].apply(lambda t: t.str.len().max())


def test_kedro_run_ends_each_text_near_a_real_length_of_its_class(
    project_copy: Path, rambling_model_cache: Path
) -> None:
    env = {progress.INTERVAL_ENV: "0.2", "COLUMNS": "250"}
    result = run_synthesis(project_copy, rambling_model_cache, TOTAL, {"local_workers": 2}, env)
    longest = longest_real_texts(project_copy)
    rows = pd.read_parquet(project_copy / "data" / "03_primary" / "synthetic_examples.parquet")
    assert len(rows) == TOTAL
    words = {word.lstrip("Ġ") for word in WORDS if word != "."}
    for text, label in zip(rows["text"], rows["label"].astype(str)):
        # the model never ends its turn; each text stops at a sentence end, and the one before
        # it lies within a real length of its class (it would run on to its token budget); the
        # model writes "." twice in a row at times, and ".." ends one sentence
        assert text.endswith("."), text
        assert len(text.rstrip(".").rpartition(".")[0]) < longest[label], (label, text)
        assert set(text.replace(".", " ").split()) <= words, text
    rejects = project_copy / "data" / "02_intermediate" / "synthetic_rejects.csv"
    reasons = pd.read_csv(rejects)["reason"].tolist() if rejects.stat().st_size else []
    assert "truncated" not in reasons
    assert "local: decoding in 2 processes, 1 torch thread(s) each" in result.stdout + result.stderr
    # bfloat16 on a CPU with AMX, int8 layers on one with an int8 dot product, else float16
    # weights (this machine's decision, as the run saw it)
    said = f"local: {PRECISIONS[fastest_precision()]}, the fastest this CPU has"
    assert said in result.stdout + result.stderr
    # stdout is a pipe here: the local provider's progress comes as lines
    assert any(
        "generate_synthetic_examples · local:" in line and "calls done" in line
        for line in result.stdout.splitlines()
    ), result.stdout[-3000:]


@pytest.fixture(scope="module")
def unpunctuated_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A judgeforge cache whose embedded model writes WORDS but the full stop, and line breaks
    (one token in 7): never a sentence end, nor its end of turn."""
    tokenizer = embedded_tokenizer()
    scores = dict.fromkeys(tokenizer.convert_tokens_to_ids([w for w in WORDS if w != "."]), 12.0)
    scores[tokenizer.convert_tokens_to_ids("Ċ")] = 12.0
    model = scoring_llama(scores, max_position_embeddings=2048)
    return save_model_cache(model, tmp_path_factory.mktemp("judgeforge-cache"), tokenizer)


def test_kedro_run_ends_a_text_with_no_sentence_end_at_a_line_break_past_a_real_length(
    project_copy: Path, unpunctuated_model_cache: Path
) -> None:
    # left alone, every text would run to its token budget with no whole sentence to keep
    # (`truncated`, nothing delivered); the local provider ends a text that holds the length
    # drawn for it at its next line break
    total = 8
    run_synthesis(project_copy, unpunctuated_model_cache, total)
    longest = longest_real_texts(project_copy)
    rows = pd.read_parquet(project_copy / "data" / "03_primary" / "synthetic_examples.parquet")
    assert len(rows) == total
    words = {word.lstrip("Ġ") for word in WORDS if word != "."}
    for text, label in zip(rows["text"], rows["label"].astype(str)):
        assert set(text.split()) <= words, text
        # a real length, then the rest of a line: at a line break in 7 tokens, a line of 60
        # words has odds of about 1 in 10,000
        assert len(text) <= longest[label] + 60 * len(" parcel"), (label, text)
