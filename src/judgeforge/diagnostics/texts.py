"""The diagnostic table (synthetic and holdout rows side by side) and the text each row is embedded as.

What is embedded, per `metric.input_format`:
- single: the feature text, unchanged.
- tuple: every feature as "<column name>: <value>", one per line, in `columns.features` order,
  so that the same words in different fields embed differently.
- rag: "query: …", "response: …", "context: …", one per line. The response comes before the
  context on purpose: MiniLM reads at most 256 word pieces, and a long context placed before
  the response would push the generated part, the one that drifts, out of the window.
Missing values embed as empty strings.
"""

from __future__ import annotations

import functools

import pandas as pd

from judgeforge.config.data_generation import RAG_ROLES, DatasetColumns
from judgeforge.config.labels import label_key
from judgeforge.schema import ROW_ID, SOURCE, SYNTHETIC_SOURCE

SPLIT = "split"
SYNTHETIC_SPLIT = "synthetic"
HOLDOUT_SPLIT = "holdout"
EMBEDDED_TEXT = "embedded_text"
RESERVED_COLUMNS = (SPLIT, EMBEDDED_TEXT)
# Order in which rag roles are written into the embedded text (see the module docstring).
RAG_EMBEDDING_ORDER = ("query", "response", "context")


def diagnostic_columns(columns: DatasetColumns) -> list[str]:
    """Return the columns of the diagnostic table, in order."""
    label = [columns.label] if columns.label else []
    return [ROW_ID, SPLIT, *columns.features, *label, EMBEDDED_TEXT]


def empty_diagnostic_table(columns: DatasetColumns) -> pd.DataFrame:
    """Return a diagnostic table with no rows."""
    return pd.DataFrame({name: pd.Series(dtype=object) for name in diagnostic_columns(columns)})


def build_diagnostic_table(
    train_table: pd.DataFrame, holdout_table: pd.DataFrame, columns: DatasetColumns, input_format: str
) -> pd.DataFrame:
    """Return the synthetic train rows then the holdout rows, tagged by split; ids as text, labels as label keys."""
    reserved = sorted(set(RESERVED_COLUMNS) & {*columns.features, columns.label})
    if reserved:
        raise ValueError(f"diagnostics reserve the column names {RESERVED_COLUMNS}; rename {reserved}")
    kept = [ROW_ID, *columns.features, *([columns.label] if columns.label else [])]
    _require_columns(train_table, [*kept, SOURCE], "train_table")
    _require_columns(holdout_table, kept, "holdout_table")
    synthetic = train_table.loc[train_table[SOURCE] == SYNTHETIC_SOURCE, kept]
    table = pd.concat(
        [synthetic.assign(**{SPLIT: SYNTHETIC_SPLIT}), holdout_table[kept].assign(**{SPLIT: HOLDOUT_SPLIT})],
        ignore_index=True,
    )
    # Seed ids may be numbers and synthetic ids are text; one text column keeps parquet happy.
    table[ROW_ID] = table[ROW_ID].astype(str)
    if columns.label:
        table[columns.label] = table[columns.label].map(label_key, na_action="ignore")
    table[EMBEDDED_TEXT] = embedding_texts(table, columns.features, input_format)
    return table[diagnostic_columns(columns)]


def embedding_texts(rows: pd.DataFrame, features: list[str], input_format: str) -> pd.Series:
    """Return the text embedded for each row (see the module docstring)."""
    if input_format == "single":
        return _field_text(rows, features[0])
    if input_format == "rag":
        column_of_role = dict(zip(RAG_ROLES, features))
        named_fields = [(role, column_of_role[role]) for role in RAG_EMBEDDING_ORDER]
    else:
        named_fields = [(column, column) for column in features]
    lines = [name + ": " + _field_text(rows, column) for name, column in named_fields]
    return functools.reduce(lambda text, line: text + "\n" + line, lines)


def _field_text(rows: pd.DataFrame, column: str) -> pd.Series:
    """Return a column as strings, missing values as empty strings."""
    return rows[column].astype(object).where(rows[column].notna(), "").astype(str)


def _require_columns(table: pd.DataFrame, required: list[str], name: str) -> None:
    """Raise a one-line error naming the columns `table` lacks."""
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks the column(s) {missing}; it has {list(table.columns)}")
