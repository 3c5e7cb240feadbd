"""The diagnostic table and what text each input format embeds."""

from __future__ import annotations

import pandas as pd
import pytest

from judgeforge.config.data_generation import DatasetColumns
from judgeforge.diagnostics.texts import (
    EMBEDDED_TEXT,
    SPLIT,
    build_diagnostic_table,
    embedding_texts,
)


def test_single_embeds_the_text_and_missing_values_as_empty() -> None:
    rows = pd.DataFrame({"text": ["hello", None]})
    assert embedding_texts(rows, ["text"], "single").tolist() == ["hello", ""]


def test_tuple_joins_fields_with_their_column_names() -> None:
    rows = pd.DataFrame({"question": ["Why?"], "answer": ["Because."]})
    assert embedding_texts(rows, ["question", "answer"], "tuple").tolist() == ["question: Why?\nanswer: Because."]


def test_rag_names_roles_and_puts_the_response_before_the_context() -> None:
    rows = pd.DataFrame({"q": ["Who?"], "ctx": ["A long passage."], "a": ["Ada."]})
    assert embedding_texts(rows, ["q", "ctx", "a"], "rag").tolist() == [
        "query: Who?\nresponse: Ada.\ncontext: A long passage."
    ]


def test_table_keeps_synthetic_train_rows_and_the_holdout_with_text_ids_and_label_keys() -> None:
    train = pd.DataFrame(
        {"row_id": ["syn-0", 7], "text": ["made up", "real seed"], "label": [1, True], "source": ["synthetic", "seed"]}
    )
    holdout = pd.DataFrame({"row_id": [3], "text": ["held out"], "label": [0.0]})
    table = build_diagnostic_table(train, holdout, DatasetColumns(features=["text"], label="label"), "single")
    assert table[["row_id", SPLIT, "label", EMBEDDED_TEXT]].values.tolist() == [
        ["syn-0", "synthetic", "1", "made up"],
        ["3", "holdout", "0", "held out"],
    ]


def test_missing_columns_are_named_in_one_line() -> None:
    train = pd.DataFrame({"row_id": [], "text": [], "source": []})
    holdout = pd.DataFrame({"row_id": [], "text": [], "label": []})
    with pytest.raises(ValueError, match=r"^train_table lacks the column\(s\) \['label'\]"):
        build_diagnostic_table(train, holdout, DatasetColumns(features=["text"], label="label"), "single")


def test_reserved_column_names_are_refused() -> None:
    empty = pd.DataFrame({"row_id": [], "split": [], "label": [], "source": []})
    with pytest.raises(ValueError, match="rename \\['split'\\]"):
        build_diagnostic_table(empty, empty, DatasetColumns(features=["split"], label="label"), "single")
