"""Pure functions that validate seed rows and split them into enhancement and holdout sets."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import numpy as np
import pandas as pd

from judgeforge.config.data_generation import (
    DatasetColumns,
    MetricConfig,
    SamplingConfig,
    SourceDataset,
)
from judgeforge.config.labels import label_key
from judgeforge.errors import UserError
from judgeforge.schema import MALFORMED, REJECT_DETAIL, REJECT_REASON, ROW_ID, SOURCE_LINE

# Reject reasons, in the order they are checked: a row gets the first that applies.
MALFORMED_ROW = "malformed_row"
NON_UTF8 = "non_utf8"
EMPTY_TEXT = "empty_text"
TEXT_TOO_LONG = "text_too_long"
MISSING_LABEL = "missing_label"
UNKNOWN_LABEL = "unknown_label"
DUPLICATE = "duplicate"
REJECT_REASONS = (
    MALFORMED_ROW,
    NON_UTF8,
    EMPTY_TEXT,
    TEXT_TOO_LONG,
    MISSING_LABEL,
    UNKNOWN_LABEL,
    DUPLICATE,
)
# Label values quoted in an error, at most.
SHOWN_LABELS = 10

_SURROGATE = re.compile("[\udc80-\udcff]")
_WHITESPACE = re.compile(r"\s+")


class SeedDataError(UserError, ValueError):
    """Seed data that cannot be used as a whole (missing columns, no usable rows)."""


def normalise_text(text: str) -> str:
    """Return the text folded for duplicate detection: NFKC, lower case, single spaces."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def validate_seed_rows(
    raw: pd.DataFrame, columns: DatasetColumns, metric: MetricConfig, max_text_chars: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (clean rows with canonical labels, rejected rows with a reason each); either may be empty.

    Rows the reader could not split into the header's columns (MALFORMED) are rejected first,
    with their line; `usable_seed_rows` then decides whether what is left can be used.
    """
    label = columns.label or None
    _check_columns(raw, columns)
    table = raw.reset_index(drop=True).copy()
    malformed = (
        table[MALFORMED].fillna("").astype(str) != ""
        if MALFORMED in table
        else pd.Series(False, index=table.index)
    )
    table[ROW_ID] = _row_ids(table, malformed)
    reasons = pd.Series(pd.NA, index=table.index, dtype="object")
    details = pd.Series("", index=table.index, dtype="object")

    def mark(mask: pd.Series, reason: str, detail: pd.Series | str) -> None:
        fresh = mask & reasons.isna()
        reasons[fresh] = reason
        details[fresh] = detail[fresh] if isinstance(detail, pd.Series) else detail

    if malformed.any():
        mark(
            malformed,
            MALFORMED_ROW,
            "line " + table[SOURCE_LINE].astype(str) + ": " + table[MALFORMED].astype(str),
        )
    for column in [*columns.features, *([label] if label else [])]:
        undecodable = (
            table[column]
            .map(lambda v: isinstance(v, str) and _SURROGATE.search(v) is not None)
            .astype(bool)
        )
        mark(undecodable, NON_UTF8, f"column {column} has bytes that are not UTF-8")
        # pyarrow-backed string columns cannot hold surrogates: show the bytes as \x.. escapes
        table[column] = pd.Series(
            [_printable(v) if bad else v for v, bad in zip(table[column], undecodable)],
            index=table.index,
            dtype=object,
        )
    for column in columns.features:
        blank = table[column].map(lambda v: not isinstance(v, str) or not v.strip())
        mark(blank, EMPTY_TEXT, f"column {column} is empty or null")
    for column in columns.features:
        lengths = table[column].map(lambda v: len(v) if isinstance(v, str) else 0)
        too_long = lengths > max_text_chars
        mark(
            too_long,
            TEXT_TOO_LONG,
            f"column {column} holds "
            + lengths.astype(str)
            + f" characters (source_data.max_text_chars: {max_text_chars})",
        )
    if label:
        missing = table[label].isna() | table[label].map(
            lambda v: isinstance(v, str) and not v.strip()
        )
        mark(missing, MISSING_LABEL, f"column {label} is empty or null")
        table[label] = table[label].map(lambda v: v if pd.isna(v) else label_key(v))
        known = metric.label_keys()
        if known:
            unknown = ~table[label].isin(known) & table[label].notna()
            mark(
                unknown,
                UNKNOWN_LABEL,
                "label " + table[label].astype(str) + f" is not one of {', '.join(known)}",
            )
    fingerprint = (
        table[columns.features]
        .map(lambda v: normalise_text(v) if isinstance(v, str) else "")
        .agg("\x1f".join, axis=1)
    )
    usable = reasons.isna()
    first_of = fingerprint[usable].drop_duplicates()
    repeat = usable & ~fingerprint.index.isin(first_of.index)
    first_row = pd.Series(table.loc[first_of.index, ROW_ID].to_numpy(), index=first_of.to_numpy())
    mark(repeat, DUPLICATE, "same text as row_id " + fingerprint.map(first_row).astype(str))

    clean = table[reasons.isna()].reset_index(drop=True)
    rejects = table[reasons.notna()].assign(
        **{REJECT_REASON: reasons[reasons.notna()], REJECT_DETAIL: details[reasons.notna()]}
    )
    source_columns = [c for c in raw.columns if c not in (ROW_ID, MALFORMED)]
    rejects = rejects[[ROW_ID, REJECT_REASON, REJECT_DETAIL, *source_columns]]
    rejects = rejects.map(_printable).reset_index(drop=True)
    return clean[[ROW_ID, *columns.features, *([label] if label else [])]], rejects


def usable_seed_rows(
    clean: pd.DataFrame, rejects: pd.DataFrame, metric: MetricConfig, source: SourceDataset
) -> pd.DataFrame:
    """Return the clean rows when they can seed the metric; else raise naming the source and what is wrong.

    Runs after the rejects are saved, so a refused seed set still leaves its rejects file.
    """
    where = seed_source_name(source)
    rows_in = len(clean) + len(rejects)
    reasons = rejects[REJECT_REASON] if len(rejects) else pd.Series(dtype=object)
    malformed = rejects[reasons == MALFORMED_ROW]
    if len(malformed) * 2 > rows_in:
        first = malformed[REJECT_DETAIL].iloc[0]
        raise SeedDataError(
            f"{where}: {len(malformed)} of {rows_in} records cannot be read as rows (first: {first}); "
            "check the separator, the header and the quoting (every record is listed in the seed rejects file)"
        )
    label = source.columns.label or None
    if clean.empty:
        found = ""
        if label and label in rejects:
            values = sorted({label_key(v) for v in rejects.loc[reasons == UNKNOWN_LABEL, label]})
            if values:
                found = (
                    f"; labels found: {_listed(values)}, expected: {_listed(metric.label_keys())}"
                )
        raise SeedDataError(
            f"{where}: no usable seed rows, all {rows_in} were rejected ({reason_counts_text(rejects)}){found}"
            " (see the seed rejects file)"
        )
    if label:
        present = set(clean[label])
        absent = [c for c in metric.class_labels or [] if label_key(c.label) not in present]
        if absent:
            named = ", ".join(f"{c.name} (label {label_key(c.label)})" for c in absent)
            raise SeedDataError(
                f"{where}: class {named} has no usable seed rows; every class needs some to seed and test it"
            )
        if metric.type == "binary" and len(present) < 2:
            raise SeedDataError(
                f"{where}: a binary metric needs seed rows of both classes, found only label {_listed(sorted(present))}"
            )
    return clean


def seed_source_name(source: SourceDataset) -> str:
    """Return how errors name the seed source: its file path or Hugging Face dataset name."""
    if source.source_type == "csv":
        return f"seed file {source.csv.file_path}"
    return f"seed dataset {source.huggingface.name} (split {source.huggingface.split})"


def _listed(values: list[str]) -> str:
    shown = ", ".join(repr(v) for v in values[:SHOWN_LABELS])
    return shown + (f" and {len(values) - SHOWN_LABELS} more" if len(values) > SHOWN_LABELS else "")


def _check_columns(raw: pd.DataFrame, columns: DatasetColumns) -> None:
    expected = [*columns.features, *([columns.label] if columns.label else [])]
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise SeedDataError(
            f"seed data lacks column(s) {', '.join(missing)} named in source_data.dataset.columns (it has: {', '.join(map(str, raw.columns))})"
        )
    if raw.empty:
        raise SeedDataError("seed data has no rows")


def _row_ids(table: pd.DataFrame, malformed: pd.Series) -> pd.Series:
    if ROW_ID not in table.columns:
        return pd.Series([str(i) for i in range(len(table))], index=table.index, dtype="object")
    ids = table[ROW_ID].map(lambda v: label_key(v) if not pd.isna(v) else "")
    # a malformed record's row_id is whatever the broken line held: it is rejected anyway
    readable = ids[~malformed]
    if (readable == "").any() or readable.duplicated().any():
        raise SeedDataError(
            f"seed data column {ROW_ID} must be unique and non-empty (or remove it to use row positions)"
        )
    return ids


def _printable(value: Any) -> Any:
    # surrogate-escaped bytes cannot be written to CSV/parquet; show them as \x.. escapes
    if isinstance(value, str) and _SURROGATE.search(value):
        return value.encode("utf-8", errors="surrogateescape").decode(
            "utf-8", errors="backslashreplace"
        )
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def reason_counts_text(rejects: pd.DataFrame) -> str:
    """Return "reason: count, ..." for a rejects table."""
    counts = rejects[REJECT_REASON].value_counts()
    return ", ".join(f"{reason}: {count}" for reason, count in counts.items())


def split_seed_rows(
    clean: pd.DataFrame, sampling: SamplingConfig, label: str | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (enhancement rows, holdout rows), stratified by label and identical for one seed."""
    ids = clean[ROW_ID].astype(str)
    pinned = [str(i) for i in sampling.pinned_enhancement_row_ids]
    absent = [i for i in pinned if i not in set(ids)]
    if absent:
        raise SeedDataError(
            f"source_data.sampling.pinned_enhancement_row_ids: {', '.join(absent)} not among the clean seed rows (absent or rejected; see the ingestion report)"
        )
    rng = np.random.default_rng(sampling.seed)
    chosen: list[int] = []
    # without a label column (label-only mode) the rows form a single stratum
    strata = (
        sorted(clean.groupby(label, sort=False), key=lambda item: str(item[0]))
        if label
        else [("", clean)]
    )
    for _, group in strata:
        is_pinned = ids[group.index].isin(pinned)
        quota = enhancement_quota(
            len(group), sampling.enhancement_fraction, sampling.max_enhancement_samples_per_class
        )
        others = group.index[~is_pinned.to_numpy()].to_numpy()
        extra = max(0, quota - int(is_pinned.sum()))
        picked = rng.permutation(others)[:extra] if extra else np.array([], dtype=int)
        chosen.extend(group.index[is_pinned.to_numpy()].tolist() + picked.tolist())
    in_enhancement = clean.index.isin(chosen)
    return clean[in_enhancement].reset_index(drop=True), clean[~in_enhancement].reset_index(
        drop=True
    )


def enhancement_quota(class_rows: int, fraction: float, cap: int) -> int:
    """Return how many rows of one class go to the enhancement set.

    At least one when the class has two or more rows, so every class has a few-shot example
    and keeps a holdout row; never all of them, so every class stays measurable.
    """
    if class_rows < 2:
        return 0
    return int(min(cap, class_rows - 1, max(1, round(fraction * class_rows))))


def build_ingestion_report(
    raw: pd.DataFrame,
    rejects: pd.DataFrame,
    enhancement: pd.DataFrame,
    holdout: pd.DataFrame,
    label: str | None,
) -> dict[str, Any]:
    """Return counts: rows in, rejected by reason, and rows per class per split."""
    rejected = rejects[REJECT_REASON].value_counts()
    classes = sorted(set(enhancement[label]) | set(holdout[label])) if label else []
    return {
        "rows_in": len(raw),
        "rows_clean": int(len(enhancement) + len(holdout)),
        "rows_rejected": len(rejects),
        "rejected_by_reason": {reason: int(rejected.get(reason, 0)) for reason in REJECT_REASONS},
        "per_class": {
            str(c): {
                "enhancement": int((enhancement[label] == c).sum()),
                "holdout": int((holdout[label] == c).sum()),
            }
            for c in classes
        },
        "enhancement_rows": len(enhancement),
        "holdout_rows": len(holdout),
    }
