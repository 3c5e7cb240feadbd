"""Label-only nodes: clean the rows to label, then build {train: judged rows, test: holdout}."""

from __future__ import annotations

import datasets
import pandas as pd

from judgeforge.config.data_generation import DatasetColumns, MetricConfig, OutputConfig
from judgeforge.pipelines.ingestion.nodes import (
    SeedDataError,
    reason_counts_text,
    validate_seed_rows,
)
from judgeforge.pipelines.labelling.judge import JudgeStatus
from judgeforge.pipelines.labelling.nodes import JUDGE_LABEL, STATUS
from judgeforge.schema import ROW_ID, SEED_SOURCE, SOURCE


def prepare_rows_to_label(
    raw: pd.DataFrame, columns: DatasetColumns, metric: MetricConfig, max_text_chars: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (rows to label, rejected rows): the ingestion checks on the feature columns; no label column needed."""
    clean, rejects = validate_seed_rows(raw, columns.model_copy(update={"label": None}), metric, max_text_chars)
    if clean.empty:
        raise SeedDataError(f"csv.train_file_path: no rows to label, all {len(rejects)} were rejected ({reason_counts_text(rejects)})")
    return clean.assign(**{SOURCE: SEED_SOURCE}), rejects


def assemble_labelled_dataset(
    rows: pd.DataFrame, judge_labels: pd.DataFrame, holdout: pd.DataFrame, columns: DatasetColumns, output: OutputConfig
) -> datasets.DatasetDict:
    """Return {train: rows with a valid judge label as their label, test: holdout}; invalid rows stay out of train."""
    label = columns.label_column
    keep = [ROW_ID, *columns.features, label, SOURCE]
    judged = judge_labels[judge_labels[STATUS] == JudgeStatus.OK].set_index(ROW_ID)[JUDGE_LABEL]
    train = rows.assign(**{label: rows[ROW_ID].astype(str).map(judged)}).dropna(subset=[label])
    test = holdout.assign(**{SOURCE: SEED_SOURCE})
    test_columns = [c for c in keep if c in test.columns]
    return datasets.DatasetDict(
        {
            output.dataset.splits.train: datasets.Dataset.from_pandas(train[keep].astype(str), preserve_index=False),
            output.dataset.splits.test: datasets.Dataset.from_pandas(test[test_columns].astype(str), preserve_index=False),
        }
    )
