"""Column names shared by every pipeline's tables.

Tables carry the configured feature columns and the configured label column (values as
canonical label keys, see `judgeforge.config.labels.label_key`), plus these columns.
"""

ROW_ID = "row_id"  # text: seed rows the source's row_id (or 0-based position), synthetic "syn-<n>"
SOURCE = "source"  # "seed" for real rows, "synthetic" for generated rows
SEED_SOURCE = "seed"
SYNTHETIC_SOURCE = "synthetic"
REJECT_REASON = "reason"  # rejects tables: why the row was set aside
REJECT_DETAIL = "detail"  # rejects tables: the specifics (which column, which value)
