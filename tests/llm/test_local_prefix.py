"""The local provider prefills a shared system turn once per model, on a tiny random model."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from judgeforge import progress
from judgeforge.llm import ChatMessage, LLMRequest
from judgeforge.llm.local import (
    MIN_PREFIX_TOKENS,
    LocalChat,
    load_causal_lm,
    render_prompt,
    system_prefix_length,
)
from tests.support.commands import kedro
from tests.support.tiny_judge import save_checkpoint, tiny_llama

RUBRIC = (
    "You write short customer messages for a support team. A complaint names what went wrong, "
    "when it happened and what the customer wants done about it."
)
OTHER_RUBRIC = (
    "You write short customer messages for a support team. A compliment thanks a named person "
    "for something specific they did, in one or two sentences."
)


def tiny_model(directory: Path) -> Path:
    """A 2-layer random Llama (always the same weights) with the embedded model's tokenizer."""
    return save_checkpoint(tiny_llama(max_position_embeddings=1024), directory)


@pytest.fixture
def tiny_model_dir(tmp_path: Path) -> Path:
    """The tiny model in a folder of its own: loaded with an empty prefix store of its own."""
    return tiny_model(tmp_path / "tiny-llama")


def fed_tokens(model_dir: Path) -> tuple[list[tuple[int, int]], object]:
    """A list that collects (rows, width) of every forward pass of the model, and the hook to remove."""
    fed: list[tuple[int, int]] = []

    def record(_module, _args, kwargs):
        fed.append(tuple(kwargs["input_ids"].shape))

    hook = load_causal_lm(model_dir).model.register_forward_pre_hook(record, with_kwargs=True)
    return fed, hook


def ask(text: str, system: str | None = RUBRIC, **params) -> LLMRequest:
    return LLMRequest.from_prompt(text, system=system, **{"max_tokens": 6, **params})


def test_the_prefix_is_the_rendered_system_turn_when_long_enough(tiny_model_dir: Path) -> None:
    tokenizer = load_causal_lm(tiny_model_dir).tokenizer

    def length(request: LLMRequest) -> int:
        prompt = tokenizer(render_prompt(tokenizer, request), add_special_tokens=False)
        return system_prefix_length(tokenizer, request, prompt["input_ids"])

    system_turn = tokenizer.apply_chat_template(
        [{"role": "system", "content": RUBRIC}], tokenize=False
    )
    expected = len(tokenizer(system_turn, add_special_tokens=False)["input_ids"])
    assert expected >= MIN_PREFIX_TOKENS
    assert length(ask("Write one.")) == expected
    # the JSON instruction goes into the last turn, not the system turn
    schema = {"type": "object", "properties": {"label": {"type": "string"}}}
    assert length(ask("Write one.", json_schema=schema)) == expected
    assert length(ask("Write one.", system=None)) == 0  # no system message
    assert length(ask("Write one.", system="Be brief.")) == 0  # too short to be worth it
    only_system = LLMRequest(messages=(ChatMessage("system", RUBRIC),), max_tokens=4)
    assert length(only_system) == 0  # the turn would be the whole prompt


def test_rows_sharing_a_system_turn_prefill_it_once(tiny_model_dir: Path) -> None:
    store = load_causal_lm(tiny_model_dir).prefixes
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=8, show_progress=False)
    tokenizer = load_causal_lm(tiny_model_dir).tokenizer
    # one answer token each: every forward pass is a prefill
    requests = [ask(f"Write message {i} about a late parcel.", max_tokens=1) for i in range(4)]
    prompts = [
        tokenizer(render_prompt(tokenizer, r), add_special_tokens=False)["input_ids"]
        for r in requests
    ]
    prefix = system_prefix_length(tokenizer, requests[0], prompts[0])
    fed, hook = fed_tokens(tiny_model_dir)
    try:
        chat.generate_batch(requests)
    finally:
        hook.remove()
    tails = [len(p) - prefix for p in prompts]
    # the system turn alone, then the four rests together (left-padded to the longest)
    assert fed == [(1, prefix), (4, max(tails))]
    assert chat.prefilled_tokens == prefix + sum(tails)
    assert sum(rows * width for rows, width in fed) < sum(len(p) for p in prompts)
    assert (store.misses, store.hits) == (1, 0)

    # a later call with the same system turn prefills only its rest
    fed, hook = fed_tokens(tiny_model_dir)
    try:
        chat.generate_batch([ask("Write one more.", max_tokens=1)])
    finally:
        hook.remove()
    assert len(fed) == 1 and fed[0][1] < prefix
    assert store.hits == 1


def test_answers_do_not_depend_on_who_shared_the_prefix_or_when_it_was_computed(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    store = load_causal_lm(tiny_model_dir).prefixes
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=8, show_progress=False)
    requests = [
        ask("Short.", max_tokens=3),
        ask(
            "A much longer request than the first one, padded between turn and rest.", max_tokens=12
        ),
        ask("Medium request here.", system=OTHER_RUBRIC, max_tokens=8),
        ask("No system message at all.", system=None, max_tokens=6),
        ask("Sampled with its own seed.", temperature=1.0, seed=5, max_tokens=10),
        ask("Sampled too, the other turn.", system=OTHER_RUBRIC, temperature=1.0, seed=7),
    ]
    fed, hook = fed_tokens(tiny_model_dir)
    try:
        together = chat.generate_batch(requests)  # both system turns computed in this call
    finally:
        hook.remove()
    # one admission: each system turn alone, then one prefill per turn and one for the row without
    prefills = [shape for shape in fed if shape[1] > 1]
    # (the groups' order follows the shortest prompts)
    assert sorted(rows for rows, _ in prefills) == [1, 1, 1, 2, 3]
    assert (store.misses, store.hits) == (2, 0)

    alone_warm = [chat.generate_batch([r])[0] for r in requests]  # turns from the store
    assert store.hits == 5
    # the same weights in another folder: another store, so every turn is computed again
    cold = LocalChat(model_dir=tiny_model(tmp_path / "cold"), batch_size=8, show_progress=False)
    alone_cold = [cold.generate_batch([r])[0] for r in requests]
    assert (
        [a.text for a in together] == [a.text for a in alone_warm] == [a.text for a in alone_cold]
    )
    assert [a.output_tokens for a in together] == [a.output_tokens for a in alone_cold]


def test_the_store_evicts_the_least_recently_used_turn(tiny_model_dir: Path) -> None:
    store = load_causal_lm(tiny_model_dir).prefixes
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=4, show_progress=False)
    systems = [f"{RUBRIC} Class {name}." for name in ("one", "two", "three")]
    first = chat.generate_batch([ask("Write.", system=systems[0])])[0]
    one_turn = store.tokens
    store.max_tokens = 2 * one_turn + 1  # room for two turns of this length
    for system in systems[1:]:
        chat.generate_batch([ask("Write.", system=system)])
    assert store.tokens <= store.max_tokens
    assert store.misses == 3
    # the first turn was evicted: computed again, with the same answer
    again = chat.generate_batch([ask("Write.", system=systems[0])])[0]
    assert store.misses == 4 and store.hits == 0
    assert again.text == first.text
    # the most recent turn is still held
    chat.generate_batch([ask("Write.", system=systems[2])])
    assert store.hits == 1


def test_a_synthesis_run_prefills_each_class_system_turn_once(
    project_copy: Path, request: pytest.FixtureRequest
) -> None:
    """Through `kedro run`: the embedded model (a tiny one that writes whole sentences) reuses
    the system turn of each class's calls."""
    model_cache = request.getfixturevalue("rambling_model_cache")
    local = {
        "data_generation": {
            "generation": {"total_examples": 4, "examples_per_call": 1},
            "data_quality_metrics": {"enabled": False},
        }
    }
    (project_copy / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(local))
    logging_file = project_copy / "conf" / "logging.yml"
    logging_config = yaml.safe_load(logging_file.read_text())
    logging_config["loggers"]["judgeforge.llm.local"] = {"level": "DEBUG"}
    logging_file.write_text(yaml.safe_dump(logging_config))
    env = {"JUDGEFORGE_CACHE_DIR": str(model_cache), progress.INTERVAL_ENV: "0.2", "COLUMNS": "250"}
    result = kedro(project_copy, "run", "--pipelines", "ingestion,synthesis", env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # the local provider's debug line per batch of calls
    counts = re.findall(
        r"local: \d+ calls, (\d+) of their (\d+) prompt tokens prefilled", result.stdout
    )
    assert counts, result.stdout[-3000:]
    prefilled = sum(int(p) for p, _ in counts)
    total = sum(int(t) for _, t in counts)
    assert 0 < prefilled < total
