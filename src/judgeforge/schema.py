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
# Raw seed tables read from a CSV / TSV / JSONL file (see judgeforge.datasets.seed_data):
SOURCE_LINE = "source_line"  # the line of the file the record starts on (the header is line 1)
MALFORMED = "malformed"  # why the record could not be read as one row ("" when it could)
RAW_RECORD = "raw_record"  # the record's lines as written, kept for the rejects file when malformed
