"""Ingestion nodes: each reject reason, the enhancement / holdout split rules and the report."""

from __future__ import annotations

import pandas as pd
import pytest

from judgeforge.config.data_generation import (
    DatasetColumns,
    MetricConfig,
    SamplingConfig,
    SourceDataset,
)
from judgeforge.datasets import SeedDataset
from judgeforge.pipelines.ingestion.nodes import (
    REJECT_REASONS,
    SeedDataError,
    build_ingestion_report,
    enhancement_quota,
    normalise_text,
    split_seed_rows,
    usable_seed_rows,
    validate_seed_rows,
)
from judgeforge.schema import (
    MALFORMED,
    RAW_RECORD,
    REJECT_DETAIL,
    REJECT_REASON,
    ROW_ID,
    SOURCE_LINE,
)

TEXT = ["text"]
MAX_TEXT = 100_000


def binary_metric(labels=(1, 0)) -> MetricConfig:
    return MetricConfig(
        name="toxicity",
        description="Is the message toxic?",
        type="binary" if len(labels) == 2 else "multi-class",
        input_format="single",
        class_labels=[
            {"name": f"class-{label}", "label": label, "rubric": "r"} for label in labels
        ],
    )


def columns(features=TEXT, label="label") -> DatasetColumns:
    return DatasetColumns(features=list(features), label=label)


def frame(rows: list[tuple], names=("text", "label")) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(names), dtype=object)


def balanced(per_class: dict[str, int]) -> pd.DataFrame:
    """Return clean-looking seed rows: `n` distinct texts for each label."""
    rows = [(f"message {label}-{i}", label) for label, n in per_class.items() for i in range(n)]
    return frame(rows)


def reasons(rejects: pd.DataFrame) -> dict[str, str]:
    return dict(zip(rejects[ROW_ID], rejects[REJECT_REASON]))


def details(rejects: pd.DataFrame) -> dict[str, str]:
    return dict(zip(rejects[ROW_ID], rejects[REJECT_DETAIL]))


# ---------------------------------------------------------------- reject reasons


def test_empty_and_null_text_are_rejected_as_empty_text():
    raw = frame(
        [
            ("fine", "1"),
            ("", "0"),
            ("   \t", "1"),
            (None, "0"),
            (float("nan"), "1"),
            ("also fine", "0"),
        ]
    )
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {
        "1": "empty_text",
        "2": "empty_text",
        "3": "empty_text",
        "4": "empty_text",
    }
    assert set(details(rejects).values()) == {"column text is empty or null"}
    assert list(clean[ROW_ID]) == ["0", "5"]


def test_missing_label_is_rejected():
    raw = frame([("a", "1"), ("b", None), ("c", ""), ("d", "  "), ("e", "0")])
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {"1": "missing_label", "2": "missing_label", "3": "missing_label"}
    assert details(rejects)["1"] == "column label is empty or null"
    assert list(clean[ROW_ID]) == ["0", "4"]


def test_unknown_label_is_rejected_with_the_known_labels():
    raw = frame([("a", "1"), ("b", "7"), ("c", "yes"), ("d", "0")])
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {"1": "unknown_label", "2": "unknown_label"}
    assert details(rejects) == {
        "1": "label 7 is not one of 1, 0",
        "2": "label yes is not one of 1, 0",
    }
    assert list(clean["label"]) == ["1", "0"]


def test_label_spellings_are_canonicalised():
    raw = frame([("a", 1), ("b", "1"), ("c", 1.0), ("d", " 1 "), ("e", 0), ("f", "0.0")])
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert list(clean["label"]) == [
        "1",
        "1",
        "1",
        "1",
        "0",
        "0",
    ]  # "0.0" in a text file is the label 0
    assert rejects.empty


def test_string_class_labels_match_case_insensitively():
    metric = binary_metric(labels=("Yes", "No"))
    clean, rejects = validate_seed_rows(
        frame([("a", "yes"), ("b", "NO"), ("c", "maybe")]), columns(), metric, MAX_TEXT
    )
    assert list(clean["label"]) == ["yes", "no"]
    assert reasons(rejects) == {"2": "unknown_label"}


def test_duplicates_after_whitespace_case_and_unicode_normalisation():
    raw = frame(
        [
            ("Hello   World", "1"),
            ("hello world", "1"),
            ("  HELLO\tworld\n", "0"),
            ("Ｈｅｌｌｏ World", "1"),  # full-width letters fold to ASCII under NFKC
            ("Hello, World", "0"),
        ]
    )
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {"1": "duplicate", "2": "duplicate", "3": "duplicate"}
    assert set(details(rejects).values()) == {"same text as row_id 0"}
    assert list(clean[ROW_ID]) == ["0", "4"]
    assert normalise_text("  A\u00a0 B ") == "a b"


def test_duplicates_compare_all_feature_columns_together():
    raw = frame(
        [("q1", "a1", "1"), ("q1", "a2", "1"), ("Q1 ", " A1", "0"), ("q2", "a1", "0")],
        names=("question", "answer", "label"),
    )
    clean, rejects = validate_seed_rows(
        raw, columns(features=["question", "answer"]), binary_metric(), MAX_TEXT
    )
    assert reasons(rejects) == {"2": "duplicate"}
    assert details(rejects) == {"2": "same text as row_id 0"}
    assert list(clean.columns) == [ROW_ID, "question", "answer", "label"]


def test_first_applicable_reason_wins():
    raw = frame(
        [
            ("original", "1"),  # 0 clean
            ("", None),  # 1 empty text and missing label -> empty_text
            ("original", None),  # 2 duplicate and missing label -> missing_label
            ("original", "9"),  # 3 duplicate and unknown label -> unknown_label
            ("fresh", "9"),  # 4 unknown label
            ("fresh", "0"),  # 5 same text as a rejected row only: clean, not a duplicate
            ("ORIGINAL", "0"),  # 6 duplicate of row 0
        ]
    )
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {
        "1": "empty_text",
        "2": "missing_label",
        "3": "unknown_label",
        "4": "unknown_label",
        "6": "duplicate",
    }
    assert list(clean[ROW_ID]) == ["0", "5"]
    assert REJECT_REASONS == (
        "malformed_row",
        "non_utf8",
        "empty_text",
        "text_too_long",
        "missing_label",
        "unknown_label",
        "duplicate",
    )


def test_rejects_table_keeps_every_source_column_as_printable_text():
    raw = frame([("ok", "1"), ("", "0"), ("x", "2")]).assign(source_note=["n0", None, 3.5])
    _, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert list(rejects.columns) == [
        ROW_ID,
        REJECT_REASON,
        REJECT_DETAIL,
        "text",
        "label",
        "source_note",
    ]
    assert rejects.to_dict("records") == [
        {
            ROW_ID: "1",
            REJECT_REASON: "empty_text",
            REJECT_DETAIL: "column text is empty or null",
            "text": "",
            "label": "0",
            "source_note": "",
        },
        {
            ROW_ID: "2",
            REJECT_REASON: "unknown_label",
            REJECT_DETAIL: "label 2 is not one of 1, 0",
            "text": "x",
            "label": "2",
            "source_note": "3.5",
        },
    ]


def _write_latin1_csv(path) -> None:
    path.write_bytes(
        "text,label\nplain text,1\ncaf\xe9 au lait,0\nanother one,0\n".encode("latin-1")
    )


def test_non_utf8_row_from_a_real_csv_is_rejected(tmp_path):
    path = tmp_path / "seed.csv"
    _write_latin1_csv(path)
    raw = SeedDataset(file_path=str(path)).load()
    assert raw.loc[1, "text"] == "caf\udce9 au lait"
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {"1": "non_utf8"}
    assert details(rejects) == {"1": "column text has bytes that are not UTF-8"}
    assert rejects.loc[0, "text"] == "caf\\xe9 au lait"
    assert list(clean[ROW_ID]) == ["0", "2"]


@pytest.mark.parametrize("column", ["text", "label"])
def test_non_utf8_cells_are_rejected_before_other_reasons(column):
    rows = [("good", "1"), ("also good", "0"), ("bad", "1"), ("", None)]
    raw = frame(rows)
    raw.loc[2, column] = raw.loc[2, column] + "\udce9"
    raw.loc[3, "text"] = "\udcff"  # non-UTF-8 wins over the missing label
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {"2": "non_utf8", "3": "non_utf8"}
    assert details(rejects)["2"] == f"column {column} has bytes that are not UTF-8"
    assert list(clean[ROW_ID]) == ["0", "1"]


# ---------------------------------------------------------------- whole-table errors


def test_missing_feature_column_names_it_and_the_available_columns():
    raw = frame([("a", "1")], names=("message", "label"))
    with pytest.raises(SeedDataError) as caught:
        validate_seed_rows(raw, columns(features=["text"]), binary_metric(), MAX_TEXT)
    assert (
        str(caught.value)
        == "seed data lacks column(s) text named in source_data.dataset.columns (it has: message, label)"
    )


def test_missing_label_column_is_named_too():
    raw = frame([("a", "1")], names=("text", "gold"))
    with pytest.raises(SeedDataError, match=r"lacks column\(s\) label .*\(it has: text, gold\)"):
        validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)


def test_no_rows_at_all():
    with pytest.raises(SeedDataError, match="^seed data has no rows$"):
        validate_seed_rows(frame([]), columns(), binary_metric(), MAX_TEXT)


def seed_source(file_path="seed.csv") -> SourceDataset:
    return SourceDataset(source_type="csv", columns=columns(), csv={"file_path": file_path})


def test_all_rows_rejected_gives_reason_counts_and_the_label_values_found():
    raw = frame([("", "1"), (None, "0"), ("x", None), ("y", "5"), ("z", "yes")])
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    with pytest.raises(SeedDataError) as caught:
        usable_seed_rows(clean, rejects, binary_metric(), seed_source())
    message = str(caught.value)
    assert message.startswith("seed file seed.csv: no usable seed rows, all 5 were rejected (")
    for part in (
        "empty_text: 2",
        "missing_label: 1",
        "unknown_label: 2",
        "labels found: '5', 'yes', expected: '1', '0'",
    ):
        assert part in message


def test_a_class_without_seed_rows_is_named():
    metric = binary_metric(labels=(2, 1, 0))
    clean, rejects = validate_seed_rows(balanced({"1": 3, "0": 3}), columns(), metric, MAX_TEXT)
    with pytest.raises(
        SeedDataError,
        match=r"^seed file seed.csv: class class-2 \(label 2\) has no usable seed rows",
    ):
        usable_seed_rows(clean, rejects, metric, seed_source())


def test_a_binary_metric_without_class_labels_needs_two_labels():
    metric = binary_metric().model_copy(update={"class_labels": None})
    clean, rejects = validate_seed_rows(balanced({"1": 4}), columns(), metric, MAX_TEXT)
    with pytest.raises(
        SeedDataError, match="needs seed rows of both classes, found only label '1'"
    ):
        usable_seed_rows(clean, rejects, metric, seed_source())


def test_text_longer_than_the_limit_is_rejected_with_its_length():
    clean, rejects = validate_seed_rows(
        frame([("short", "1"), ("x" * 51, "0"), ("ok", "0")]), columns(), binary_metric(), 50
    )
    assert reasons(rejects) == {"1": "text_too_long"}
    assert details(rejects) == {
        "1": "column text holds 51 characters (source_data.max_text_chars: 50)"
    }
    assert list(clean[ROW_ID]) == ["0", "2"]


def test_malformed_records_are_rejected_first_with_their_line():
    raw = frame([("ok", "1"), ("garbage", "1"), ("fine", "0")]).assign(
        **{
            MALFORMED: ["", "4 fields where the header has 2", ""],
            SOURCE_LINE: [2, 3, 4],
            RAW_RECORD: ["", "garbage,1,x,y\n", ""],
        }
    )
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {"1": "malformed_row"}
    assert details(rejects) == {"1": "line 3: 4 fields where the header has 2"}
    assert rejects.loc[0, RAW_RECORD] == "garbage,1,x,y\n"
    assert MALFORMED not in rejects and MALFORMED not in clean
    assert usable_seed_rows(clean, rejects, binary_metric(), seed_source()).equals(clean)


def test_mostly_malformed_file_is_refused_naming_it():
    raw = frame([("a", "1"), ("b", "1"), ("c", "0")]).assign(
        **{
            MALFORMED: ["5 fields where the header has 2", "5 fields where the header has 2", ""],
            SOURCE_LINE: [2, 3, 4],
            RAW_RECORD: ["a", "b", ""],
        }
    )
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    with pytest.raises(
        SeedDataError,
        match=r"^seed file seed.csv: 2 of 3 records cannot be read as rows \(first: line 2: 5 fields",
    ):
        usable_seed_rows(clean, rejects, binary_metric(), seed_source())


def test_row_id_column_is_used_when_present():
    raw = frame(
        [("a", "1", "r-10"), ("b", "0", 7), ("A", "1", 8.0), ("", "0", "r-3")],
        names=("text", "label", ROW_ID),
    )
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert list(clean[ROW_ID]) == ["r-10", "7"]
    assert reasons(rejects) == {"8": "duplicate", "r-3": "empty_text"}
    assert details(rejects)["8"] == "same text as row_id r-10"


@pytest.mark.parametrize(
    "ids",
    [["a", "b", "a"], [1, 2, 1.0], ["a", None, "c"], ["a", "", "c"]],
    ids=["repeat", "repeat-numeric", "null", "empty"],
)
def test_bad_row_id_column_is_a_clear_error(ids):
    raw = frame([("x", "1"), ("y", "0"), ("z", "1")]).assign(**{ROW_ID: ids})
    with pytest.raises(
        SeedDataError, match=f"seed data column {ROW_ID} must be unique and non-empty"
    ):
        validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)


# ---------------------------------------------------------------- the split


def _clean(per_class: dict[str, int], labels=None) -> pd.DataFrame:
    metric = binary_metric(labels=labels or tuple(per_class))
    clean, rejects = validate_seed_rows(balanced(per_class), columns(), metric, MAX_TEXT)
    assert rejects.empty
    return clean


def _per_class(table: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in table["label"].value_counts().sort_index().items()}


def test_split_takes_the_fraction_of_each_class():
    clean = _clean({"1": 50, "0": 30})
    enhancement, holdout = split_seed_rows(clean, SamplingConfig(enhancement_fraction=0.2), "label")
    assert _per_class(enhancement) == {"0": 6, "1": 10}
    assert _per_class(holdout) == {"0": 24, "1": 40}


def test_split_caps_each_class():
    clean = _clean({"1": 50, "0": 30})
    enhancement, holdout = split_seed_rows(
        clean,
        SamplingConfig(enhancement_fraction=0.5, max_enhancement_samples_per_class=4),
        "label",
    )
    assert _per_class(enhancement) == {"0": 4, "1": 4}
    assert len(holdout) == 72


def test_split_is_a_partition_of_the_clean_rows():
    clean = _clean({"1": 23, "0": 17})
    enhancement, holdout = split_seed_rows(
        clean, SamplingConfig(enhancement_fraction=0.3, seed=5), "label"
    )
    enhancement_ids, holdout_ids = set(enhancement[ROW_ID]), set(holdout[ROW_ID])
    assert enhancement_ids.isdisjoint(holdout_ids)
    assert enhancement_ids | holdout_ids == set(clean[ROW_ID])
    assert len(enhancement) + len(holdout) == len(clean)
    assert list(enhancement.columns) == list(clean.columns) == list(holdout.columns)


def test_split_is_identical_for_one_seed_and_differs_for_another():
    clean = _clean({"1": 40, "0": 40})
    first = split_seed_rows(clean, SamplingConfig(seed=7), "label")
    again = split_seed_rows(clean.copy(), SamplingConfig(seed=7), "label")
    other = split_seed_rows(clean, SamplingConfig(seed=8), "label")
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])
    assert set(first[0][ROW_ID]) != set(other[0][ROW_ID])
    assert _per_class(first[0]) == _per_class(other[0]) == {"0": 8, "1": 8}


def test_pinned_rows_are_always_in_the_enhancement_set():
    clean = _clean({"1": 20, "0": 20})
    for seed in range(5):
        sampling = SamplingConfig(
            enhancement_fraction=0.1, seed=seed, pinned_enhancement_row_ids=[3, 25]
        )
        enhancement, holdout = split_seed_rows(clean, sampling, "label")
        assert {"3", "25"} <= set(enhancement[ROW_ID])
        assert not {"3", "25"} & set(holdout[ROW_ID])
        assert _per_class(enhancement) == {
            "0": 2,
            "1": 2,
        }  # pinned rows count toward the class quota


def test_pinned_rows_beyond_the_quota_are_all_kept():
    clean = _clean({"1": 10, "0": 10})
    sampling = SamplingConfig(enhancement_fraction=0.1, pinned_enhancement_row_ids=[0, 1, 2])
    enhancement, _ = split_seed_rows(clean, sampling, "label")
    assert _per_class(enhancement) == {"0": 1, "1": 3}
    assert {"0", "1", "2"} <= set(enhancement[ROW_ID])


def test_absent_pinned_row_is_a_clear_error():
    clean = _clean({"1": 5, "0": 5})
    with pytest.raises(SeedDataError) as caught:
        split_seed_rows(clean, SamplingConfig(pinned_enhancement_row_ids=[2, 99]), "label")
    assert str(caught.value).startswith(
        "source_data.sampling.pinned_enhancement_row_ids: 99 not among the clean seed rows"
    )


def test_rejected_pinned_row_is_a_clear_error():
    raw = frame([("a", "1"), ("", "0"), ("b", "0"), ("c", "1"), ("d", "0")])
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    assert reasons(rejects) == {"1": "empty_text"}
    with pytest.raises(
        SeedDataError,
        match=r"pinned_enhancement_row_ids: 1 not among the clean seed rows \(absent or rejected",
    ):
        split_seed_rows(clean, SamplingConfig(pinned_enhancement_row_ids=[1]), "label")


@pytest.mark.parametrize("fraction", [0.01, 0.5, 0.99])
def test_every_class_with_two_rows_gets_one_enhancement_and_one_holdout_row(fraction):
    clean = _clean({"a": 2, "b": 3, "c": 1, "d": 9}, labels=("a", "b", "c", "d"))
    enhancement, holdout = split_seed_rows(
        clean, SamplingConfig(enhancement_fraction=fraction), "label"
    )
    enh, hold = _per_class(enhancement), _per_class(holdout)
    for label in ("a", "b", "d"):
        assert enh.get(label, 0) >= 1 and hold.get(label, 0) >= 1, (label, enh, hold)
    assert "c" not in enh and hold["c"] == 1  # a single row stays measurable in the holdout


@pytest.mark.parametrize(
    ("rows", "fraction", "cap", "expected"),
    [
        (0, 0.2, 100, 0),
        (1, 0.9, 100, 0),
        (2, 0.01, 100, 1),
        (2, 0.99, 100, 1),
        (10, 0.2, 100, 2),
        (10, 0.25, 100, 2),
        (10, 0.35, 100, 4),
        (100, 0.2, 5, 5),
        (10, 0.99, 100, 9),
    ],
)
def test_enhancement_quota(rows, fraction, cap, expected):
    assert enhancement_quota(rows, fraction, cap) == expected


def test_label_only_mode_is_one_stratum():
    raw = frame([(f"unlabelled {i}",) for i in range(20)], names=("text",))
    clean, rejects = validate_seed_rows(raw, columns(label=None), binary_metric(), MAX_TEXT)
    assert rejects.empty and list(clean.columns) == [ROW_ID, "text"]
    enhancement, holdout = split_seed_rows(
        clean, SamplingConfig(enhancement_fraction=0.25, seed=3), None
    )
    assert (len(enhancement), len(holdout)) == (5, 15)
    report = build_ingestion_report(raw, rejects, enhancement, holdout, None)
    assert (
        report["per_class"] == {}
        and report["enhancement_rows"] == 5
        and report["holdout_rows"] == 15
    )


# ---------------------------------------------------------------- the report


def test_report_counts_rows_rejects_and_classes():
    raw = frame(
        [(f"one {i}", "1") for i in range(10)]
        + [(f"zero {i}", "0") for i in range(5)]
        + [("", "1"), ("one 0", "1"), ("ONE 1", "0"), ("x", "3"), ("y", None)]
    )
    clean, rejects = validate_seed_rows(raw, columns(), binary_metric(), MAX_TEXT)
    enhancement, holdout = split_seed_rows(clean, SamplingConfig(enhancement_fraction=0.2), "label")
    report = build_ingestion_report(raw, rejects, enhancement, holdout, "label")
    assert report == {
        "rows_in": 20,
        "rows_clean": 15,
        "rows_rejected": 5,
        "rejected_by_reason": {
            "malformed_row": 0,
            "non_utf8": 0,
            "empty_text": 1,
            "text_too_long": 0,
            "missing_label": 1,
            "unknown_label": 1,
            "duplicate": 2,
        },
        "per_class": {"0": {"enhancement": 1, "holdout": 4}, "1": {"enhancement": 2, "holdout": 8}},
        "enhancement_rows": 3,
        "holdout_rows": 12,
    }
