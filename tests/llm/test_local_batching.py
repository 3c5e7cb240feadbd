"""Continuous batching and stop conditions of the local provider, on a tiny random model."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgeforge.llm import LLMRequest
from judgeforge.llm.kv_cache import CHUNK_TOKENS
from judgeforge.llm.local import (
    FIELD_SHORTEST_SHARE,
    ActiveRow,
    LocalChat,
    _close_long_field,
    answer_end,
    load_causal_lm,
    missing_label,
    prefill_passes,
)
from tests.support.tiny_judge import (
    embedded_tokenizer,
    save_checkpoint,
    scoring_llama,
    tiny_llama,
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with the embedded model's tokenizer, saved like a real checkpoint."""
    return save_checkpoint(tiny_llama(), tmp_path_factory.mktemp("tiny-llama"))


def test_a_stop_text_ends_generation_early(tiny_model_dir: Path) -> None:
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=4, show_progress=False)
    request = LLMRequest.from_prompt("Tell me something.", max_tokens=24)
    [free] = chat.generate_batch([request])
    assert free.finish_reason == "length" and free.output_tokens == 24
    # A stop text first found halfway through the free-running answer.
    start = next(
        i for i in range(len(free.text) // 2, len(free.text)) if not free.text[i].isspace()
    )
    stop = next(
        free.text[start:end]
        for end in range(start + 1, len(free.text) + 1)
        if free.text.find(free.text[start:end]) == start
    )
    assert stop.strip() == stop

    [stopped] = chat.generate_batch(
        [LLMRequest.from_prompt("Tell me something.", max_tokens=24, stop=(stop,))]
    )
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[:start].strip()
    assert stopped.output_tokens < free.output_tokens


def test_a_row_that_finishes_early_frees_its_slot(tiny_model_dir: Path) -> None:
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=2, show_progress=False)
    model = load_causal_lm(tiny_model_dir).model
    passes: list[int] = []
    hook = model.register_forward_hook(lambda *_: passes.append(1))
    answered_after: dict[int, int] = {}
    requests = [
        LLMRequest.from_prompt(f"Row {name}.", max_tokens=budget)
        for name, budget in (("a", 2), ("b", 20), ("c", 2))
    ]
    try:
        answers = chat.generate_batch(
            requests, lambda index, _: answered_after.setdefault(index, len(passes))
        )
    finally:
        hook.remove()
    assert [a.output_tokens for a in answers] == [2, 20, 2]
    # Row c takes row a's slot while row b is still decoding, instead of waiting for b to finish.
    assert answered_after[0] < answered_after[2] < answered_after[1]
    # b: one prefill + 19 steps, plus c's prefill; a static batch would need 20 + 2.
    assert len(passes) == chat.forward_passes == 21


def _prefills_of(
    model_dir: Path, chat: LocalChat, requests: list[LLMRequest]
) -> tuple[list[tuple[int, int]], list]:
    """(rows, prompt width) of each forward pass with a prompt while `chat` (on `model_dir`)
    answers `requests`, and the answers."""
    model = load_causal_lm(model_dir).model
    prefills: list[tuple[int, int]] = []

    def record(_module, args, kwargs, _output):
        ids = kwargs["input_ids"]
        if ids.shape[1] > 1:
            prefills.append(tuple(ids.shape))

    hook = model.register_forward_hook(record, with_kwargs=True)
    try:
        answers = chat.generate_batch(requests)
    finally:
        hook.remove()
    return prefills, answers


def test_rows_join_the_batch_shortest_prompt_first(tiny_model_dir: Path) -> None:
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=2, show_progress=False)
    long_prompt = "A long prompt about many things, " * 4
    requests = [
        LLMRequest.from_prompt(text, max_tokens=3)
        for text in (long_prompt, "Short one.", long_prompt + "!", "Short two.")
    ]
    prefills, _ = _prefills_of(tiny_model_dir, chat, requests)
    short, long = prefills[0], prefills[1]
    assert short[0] == 2 and long[0] == 2  # the two short prompts together, then the two long ones
    assert short[1] < long[1]


def test_prefill_passes_keep_each_padded_pass_within_the_token_budget() -> None:
    # 3 rows of up to 300 tokens fit 1,024 (900); a fourth of 900 would not; a prompt over the
    # budget, and a short one after it (padded to 1,500), each get a pass of their own
    assert prefill_passes([100, 200, 300, 900, 1500, 50], 1024) == [[0, 1, 2], [3], [4], [5]]
    assert prefill_passes([], 1024) == []


def test_long_prompts_are_prefilled_in_passes_and_answer_as_alone(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # prompts of 32, 33, 35 and 43 tokens (the template's default system turn included)
    monkeypatch.setattr("judgeforge.llm.local.PREFILL_TOKENS", 70)
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=4, show_progress=False)
    requests = [
        LLMRequest.from_prompt(prompt, max_tokens=6)
        for prompt in ("Short.", "Also short.", "A longer prompt, " * 3, "Medium length prompt.")
    ]
    prefills, together = _prefills_of(tiny_model_dir, chat, requests)
    # all four joined the batch at once, shortest first, in passes of at most 70 padded tokens
    assert prefills == [(2, 33), (1, 35), (1, 43)]
    alone = [chat.generate_batch([request])[0] for request in requests]
    assert [a.text for a in together] == [a.text for a in alone]


def test_rows_decoded_together_match_rows_decoded_alone(tiny_model_dir: Path) -> None:
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=3, show_progress=False)
    requests = [
        LLMRequest.from_prompt(prompt, max_tokens=budget)
        for prompt, budget in (
            ("Short.", 3),
            ("A much longer prompt than the first one, padded on the left.", 12),
            ("Medium prompt here.", 8),
            ("Joins later with its own length.", 6),
        )
    ]
    together = chat.generate_batch(requests)
    alone = [chat.generate_batch([request])[0] for request in requests]
    assert [a.text for a in together] == [a.text for a in alone]


def test_rows_past_a_cache_chunk_match_rows_decoded_alone(tiny_model_dir: Path) -> None:
    # contexts outgrow the cache's first chunk while rows leave and join (kv_cache.py)
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=2, show_progress=False)
    requests = [
        LLMRequest.from_prompt(prompt, max_tokens=budget)
        for prompt, budget in (
            ("A row that runs past the first chunk.", CHUNK_TOKENS + 20),
            ("Leaves early.", 40),
            ("Joins when the early one leaves, and runs long too.", CHUNK_TOKENS + 30),
        )
    ]
    together = chat.generate_batch(requests)
    alone = [chat.generate_batch([request])[0] for request in requests]
    assert [a.text for a in together] == [a.text for a in alone]
    assert together[0].input_tokens + together[0].output_tokens > CHUNK_TOKENS


def test_seeded_sampling_does_not_depend_on_the_batch(tiny_model_dir: Path) -> None:
    chat = LocalChat(model_dir=tiny_model_dir, batch_size=4, show_progress=False)
    sampled = LLMRequest.from_prompt("Say anything.", temperature=1.0, seed=11, max_tokens=10)
    others = [
        LLMRequest.from_prompt(f"Other {i}.", temperature=1.0, seed=i, max_tokens=5)
        for i in range(3)
    ]
    assert chat.generate_batch([sampled])[0].text == chat.generate_batch([*others, sampled])[3].text


def test_an_answer_ends_at_its_first_stop_text_or_where_its_json_closes() -> None:
    assert (
        answer_end("query: a\ncontext: b\nquery: c", ("\nquery:", "\n###"), closes_json=False) == 19
    )
    assert answer_end("text: one\n###\ntext: two", ("\n###",), closes_json=False) == 9
    assert answer_end("no stop yet", ("\n###",), closes_json=False) is None
    answer = '{"label": "1", "rationale": "a } in a string"}'
    assert answer_end(answer + " and more", (), closes_json=True) == len(answer)
    assert answer_end('{"label": "1", "rationale": "unfinished', (), closes_json=True) is None
    assert answer_end('{"a": 1} ###', (), closes_json=False) is None


@pytest.fixture(scope="module")
def ending_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama that ends its turn at every step (every logit equal, its end token the first)."""
    import torch

    tokenizer = embedded_tokenizer()
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(0)  # argmax of equal logits is id 0
    model = tiny_llama(num_hidden_layers=1, eos_token_id=0)
    with torch.no_grad():
        model.lm_head.weight.fill_(0.01)
    return save_checkpoint(model, tmp_path_factory.mktemp("ending-llama"), tokenizer)


def test_a_model_that_ends_before_its_layout_is_handed_the_missing_labels(
    ending_model_dir: Path,
) -> None:
    chat = LocalChat(model_dir=ending_model_dir, batch_size=2, show_progress=False)
    layout = ("query:", "context:", "response:")
    plain, laid_out = chat.generate_batch(
        [
            LLMRequest.from_prompt("Write a rag row.", max_tokens=32),
            LLMRequest.from_prompt("Write a rag row.", max_tokens=32, layout=layout),
        ]
    )
    assert plain.text == "" and plain.output_tokens == 1 and plain.finish_reason == "stop"
    # each end of turn became the next missing label; after the last one the turn may end
    assert laid_out.text.splitlines() == list(layout)
    assert laid_out.finish_reason == "stop"
    tokenizer = load_causal_lm(ending_model_dir).tokenizer
    label_tokens = sum(len(tokenizer(f"\n{label}")["input_ids"]) for label in layout)
    assert laid_out.output_tokens == label_tokens + 1
    # a budget too small for the next label ends the answer as it stands
    [short] = chat.generate_batch(
        [LLMRequest.from_prompt("Write a rag row.", max_tokens=4, layout=layout)]
    )
    assert short.text == "query:" and short.output_tokens == 4  # 3 label tokens, 1 end of turn


def test_an_answer_ends_where_a_label_comes_again_after_all_were_written() -> None:
    layout = ("query:", "context:", "response:")
    whole = "query: q\ncontext: c\nresponse: r"
    assert answer_end(whole + "\nresponse: again", (), False, layout) == len(whole) + 1
    assert answer_end(whole + "\nQuery: next", (), False, layout) == len(whole) + 1
    # a label repeated before every one was written does not end it; nor does one inside a line
    assert answer_end("query: q\nquery: q2\ncontext: c", (), False, layout) is None
    assert answer_end(whole + " and response: r", (), False, layout) is None
    assert missing_label("query: q\ncontext: c", layout) == "response:"
    assert missing_label(whole, layout) is None


RAG_LAYOUT = ("query:", "context:", "response:")


def _written(text: str, field_chars: tuple[int, ...]) -> ActiveRow:
    """A row that has written `text` (its last token picked, not yet fed), with those field lengths."""
    request = LLMRequest.from_prompt("-", max_tokens=64, layout=RAG_LAYOUT, field_chars=field_chars)
    tokens = embedded_tokenizer()(text, add_special_tokens=False)["input_ids"]
    return ActiveRow(0, request, 1, None, tokens=tokens)


def test_a_field_past_its_real_length_ends_at_the_sentence_its_newest_token_completes() -> None:
    tokenizer = embedded_tokenizer()
    row = _written("query: Is it late. Was", (10, 50, 50))
    _close_long_field(tokenizer, row)
    # " Was" completed the sentence: the label takes its place
    assert tokenizer.decode(row.tokens + list(row.forced)) == "query: Is it late.\ncontext:"
    # shorter than its length, a sentence completed before the newest token, or none completed
    # (a mark at the very end): nothing changes
    for text, lengths in (
        ("query: Is it late. Was", (40, 50, 50)),
        ("query: Is it late. Was it", (10, 50, 50)),
        ("query: Is it late.", (10, 50, 50)),
    ):
        row = _written(text, lengths)
        before = list(row.tokens)
        _close_long_field(tokenizer, row)
        assert row.tokens == before and not row.forced, text
    # the last field is not handed a label: the answer ends after its sentence
    whole = "query: q?\ncontext: c.\nresponse: It is. It was"
    row = _written(whole, (1, 1, 3))
    _close_long_field(tokenizer, row)
    assert not row.forced
    end = answer_end(whole, (), False, RAG_LAYOUT, (1, 1, 3))
    assert end is not None and whole[:end] == "query: q?\ncontext: c.\nresponse: It is."
    assert answer_end(whole, (), False, RAG_LAYOUT, (1, 1, 40)) is None
    assert answer_end(whole, (), False, RAG_LAYOUT) is None


def test_a_field_past_its_real_length_ends_at_the_line_break_its_newest_token_writes() -> None:
    tokenizer = embedded_tokenizer()
    # a field written as lines with no full stop: the line break hands the next label
    row = _written("query: error 1131, 24 May\nthe report", (16, 50, 50))
    before = list(row.tokens)
    _close_long_field(tokenizer, row)
    assert row.tokens == before and not row.forced  # the line break was an earlier token
    row = _written("query: error 1131, 24 May\n", (16, 50, 50))
    _close_long_field(tokenizer, row)
    assert row.forced
    assert tokenizer.decode(row.tokens + list(row.forced)) == "query: error 1131, 24 May\ncontext:"
    # under its length, a line break leaves the field open (a field may hold several lines)
    row = _written("query: error 1131, 24 May\n", (40, 50, 50))
    before = list(row.tokens)
    _close_long_field(tokenizer, row)
    assert row.tokens == before and not row.forced
    # the last field: the answer ends before its line break
    whole = "query: q?\ncontext: c.\nresponse: it is ok\nand more"
    end = answer_end(whole, (), False, RAG_LAYOUT, (1, 1, 6))
    assert end is not None and whole[:end] == "query: q?\ncontext: c.\nresponse: it is ok"
    assert answer_end(whole, (), False, RAG_LAYOUT, (1, 1, 40)) is None


def test_a_field_before_the_last_with_no_sentence_or_line_end_ends_at_twice_its_real_length() -> (
    None
):
    tokenizer = embedded_tokenizer()
    # the context holds 29 characters; its newest word, " data", starts at the 25th
    ran_on = "query: q?\ncontext: data, data, data, data, data"
    row = _written(ran_on, (1, 12, 20))
    _close_long_field(tokenizer, row)
    # past 24 characters (twice 12), the newest word gives way to the next label
    assert tokenizer.decode(row.tokens + list(row.forced)) == (
        "query: q?\ncontext: data, data, data, data,\nresponse:"
    )
    for lengths in ((1, 13, 20), (1, 30, 20)):  # under twice its length: the field goes on
        row = _written(ran_on, lengths)
        before = list(row.tokens)
        _close_long_field(tokenizer, row)
        assert row.tokens == before and not row.forced, lengths
    # the last field runs on to the budget (synthesis keeps its whole sentences)
    whole = "query: q?\ncontext: c.\nresponse: data, data, data, data, data"
    assert answer_end(whole, (), False, RAG_LAYOUT, (1, 1, 10)) is None


@pytest.fixture(scope="module")
def hasty_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama whose greedy choice is always its end of turn, then a line break, then " parcel"."""
    tokenizer = embedded_tokenizer()
    ranked = [tokenizer.eos_token_id, *tokenizer.convert_tokens_to_ids(["Ċ", "Ġparcel"])]
    model = scoring_llama(dict(zip(ranked, (4.0, 3.0, 2.0))))
    return save_checkpoint(model, tmp_path_factory.mktemp("hasty-llama"), tokenizer)


def test_a_field_under_a_third_of_its_real_length_cannot_end(hasty_model_dir: Path) -> None:
    chat = LocalChat(model_dir=hasty_model_dir, batch_size=2, show_progress=False, workers=1)
    lengths = (30, 90, 45)
    ask = {"max_tokens": 120, "layout": RAG_LAYOUT}
    held, free = chat.generate_batch(
        [
            LLMRequest.from_prompt("Write a rag row.", field_chars=lengths, **ask),
            LLMRequest.from_prompt("Write a rag row.", **ask),
        ]
    )
    # without lengths every field ends at once: the end of turn becomes the next label
    assert free.text.splitlines() == list(RAG_LAYOUT)
    # with them, neither the end of turn nor a line break may end a field under a third of its
    # length: the model writes its next choice until the field holds that much
    lines = held.text.splitlines()
    assert [line.split(":")[0] + ":" for line in lines] == list(RAG_LAYOUT), held.text
    for line, length in zip(lines, lengths):
        value = line.split(":", 1)[1].strip()
        assert set(value.split()) == {"parcel"}, held.text
        shortest = length * FIELD_SHORTEST_SHARE
        assert shortest <= len(value) < shortest + len(" parcel"), held.text
    assert held.finish_reason == "stop"
