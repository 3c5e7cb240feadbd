"""Reading examples out of answers: JSON, fenced JSON, and the plain format of small local models."""

import pytest

from judgeforge.pipelines.synthesis.parsing import UnreadableAnswer, parse_examples, whole_sentences
from judgeforge.pipelines.synthesis.prompts import example_shape, json_schema

SINGLE = example_shape("single", ["text"])
RAG = example_shape("rag", ["question", "passage", "answer"])


def test_json_object_list_and_fenced_forms() -> None:
    assert parse_examples('{"examples": [{"text": "a b c"}]}', SINGLE, json_only=True) == [{"text": "a b c", "label": None}]
    assert parse_examples('[{"text": "one"}, {"text": "two"}]', SINGLE, json_only=True)[1]["text"] == "two"
    assert parse_examples('```json\n{"text": "fenced", "label": 1}\n```', SINGLE, json_only=True) == [{"text": "fenced", "label": 1}]


def test_json_only_rejects_plain_text_and_items_missing_fields() -> None:
    with pytest.raises(UnreadableAnswer, match="JSON was requested"):
        parse_examples("Sure! Here is one: my parcel is late", SINGLE, json_only=True)
    with pytest.raises(UnreadableAnswer, match="no example with the fields question, passage, answer"):
        parse_examples('{"examples": [{"question": "q"}]}', RAG, json_only=True)


def test_plain_single_text_strips_a_field_label_and_quotes() -> None:
    assert parse_examples('text: "My order arrived broken."', SINGLE, json_only=False) == [{"text": "My order arrived broken.", "label": None}]


def test_plain_labelled_fields_and_separators() -> None:
    answer = "question: Where is Lyon?\npassage: Lyon is in France.\nIt is big.\nanswer: In France.\n###\nquestion: q2\npassage: p2\nanswer: a2"
    examples = parse_examples(answer, RAG, json_only=False)
    assert examples[0] == {"question": "Where is Lyon?", "passage": "Lyon is in France.\nIt is big.", "answer": "In France.", "label": None}
    assert examples[1]["answer"] == "a2"


def test_empty_answer_is_unreadable() -> None:
    with pytest.raises(UnreadableAnswer, match="empty answer"):
        parse_examples("  ", SINGLE, json_only=False)


def test_schema_fixes_the_count_and_the_fields() -> None:
    schema = json_schema(RAG, 3)
    items = schema["properties"]["examples"]
    assert items["minItems"] == items["maxItems"] == 3
    assert items["items"]["required"] == ["question", "passage", "answer"]


def test_a_cut_off_text_keeps_its_whole_sentences() -> None:
    assert whole_sentences('The box came late. I asked "why?" Then the lid fell off and') == 'The box came late. I asked "why?"'
    assert whole_sentences("It broke (again.) The refund took 3.5 weeks… and still") == "It broke (again.) The refund took 3.5 weeks…"
    assert whole_sentences("Complete sentence.") == "Complete sentence."
    assert whole_sentences("no sentence ends in version 2.0 of this") is None
