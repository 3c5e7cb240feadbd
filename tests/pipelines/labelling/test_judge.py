"""The judge prompt and answer parsing: placeholders or an Input block; valid labels only, never guessed."""

from __future__ import annotations

import pytest

from judgeforge.pipelines.labelling.judge import (
    answer_schema,
    fill_prompt,
    judge_request,
    parse_answer,
)


def test_placeholders_naming_features_are_filled_and_other_braces_kept() -> None:
    prompt = 'Query: {query}\nAnswer: {response}\nReply as {"label": ...} with {unknown}'
    filled = fill_prompt(
        prompt, ["query", "context", "response"], {"query": "Q?", "context": "C", "response": "R."}
    )
    assert filled == 'Query: Q?\nAnswer: R.\nReply as {"label": ...} with {unknown}'


def test_prompt_without_placeholders_gets_an_input_block() -> None:
    filled = fill_prompt(
        "Is this toxic?  ", ["question", "answer"], {"question": "Why?", "answer": "Because."}
    )
    assert filled == "Is this toxic?\n\nInput:\nquestion: Why?\nanswer: Because."


def test_request_asks_for_json_with_the_label_values_and_differs_per_attempt(metric) -> None:
    first = judge_request(metric, ["text"], {"text": "Late again"}, 1, "")
    second = judge_request(metric, ["text"], {"text": "Late again"}, 2, "the answer is not JSON")
    assert first.json_schema == answer_schema(["1", "0"])
    assert 'one of "1" (complaint), "0" (not_complaint)' in first.messages[-1].content
    assert "Message: Late again" in first.messages[-1].content
    assert "Attempt 2" in second.messages[-1].content and "not JSON" in second.messages[-1].content
    assert first.canonical() != second.canonical()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"label": "1", "rationale": "reports damage"}', ("1", "reports damage", "")),
        ('{"label": 0, "rationale": ""}', ("0", "", "")),
        ('{"label": "Complaint", "rationale": "by name"}', ("1", "by name", "")),
        ('```json\n{"label": "0", "rationale": "fenced"}\n```', ("0", "fenced", "")),
        ("It is a complaint.", (None, "", "the answer is not JSON")),
        ('{"verdict": "1"}', (None, "", 'the answer has no "label" field')),
        (
            '{"label": "maybe", "rationale": "unsure"}',
            (None, "", "label 'maybe' is not one of 1, 0"),
        ),
    ],
)
def test_answers_are_read_strictly(metric, text: str, expected) -> None:
    assert parse_answer(text, metric) == expected


def test_rows_are_judged_from_inside_a_running_event_loop_as_in_a_notebook(
    metric, openai_server, judge_client
) -> None:
    import asyncio

    from judgeforge.pipelines.labelling.judge import JudgeStatus, judge_rows
    from tests.support.openai_server import Reply

    openai_server.respond_with(
        lambda request: Reply.json({"label": "1", "rationale": "a complaint"})
    )
    client = judge_client()

    async def notebook_cell():
        return judge_rows(client, metric, ["text"], [{"text": "Late again"}], retries=0)

    (verdict,) = asyncio.run(notebook_cell())
    assert (verdict.label, verdict.status, verdict.attempts) == ("1", JudgeStatus.OK, 1)
