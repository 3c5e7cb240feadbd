"""Seed data from a CSV / JSONL / Parquet file or a Hugging Face dataset, as one DataFrame."""

from __future__ import annotations

import csv
import io
import json
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from judgeforge.errors import UserError
from judgeforge.schema import MALFORMED, RAW_RECORD, SOURCE_LINE

READERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}

# A column of well-formed rows with at most this many distinct values is a category (a label).
FEW_VALUES = 20


class SeedFileError(UserError, DatasetError):
    """A seed file or dataset that cannot be read at all (missing, empty, not the format it says)."""


class SeedDataset(AbstractDataset[None, pd.DataFrame]):
    """Loads seed rows; load-only. Undecodable bytes are kept as surrogates for ingestion to reject."""

    def __init__(
        self,
        source_type: str = "csv",
        file_path: str | None = None,
        hf_name: str | None = None,
        hf_split: str | None = None,
        hf_revision: str = "",
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        self._source_type = source_type
        self._file_path = file_path
        self._hf_name = hf_name
        self._hf_split = hf_split
        self._hf_revision = hf_revision
        self._storage_options = dict(credentials or {})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        if self._source_type == "csv":
            return {"source_type": "csv", "file_path": self._file_path}
        return {"source_type": "huggingface", "name": self._hf_name, "split": self._hf_split}

    def _load(self) -> pd.DataFrame:
        if self._source_type == "csv":
            return read_table_file(self._file_path or "", self._storage_options)
        return read_huggingface(
            self._hf_name or "", self._hf_split or "", self._hf_revision, self._storage_options
        )

    def _save(self, data: None) -> None:
        raise DatasetError("seed data is read-only: edit the source file instead")


def read_table_file(path: str, storage_options: dict[str, Any]) -> pd.DataFrame:
    """Return the rows of a CSV, JSONL or Parquet file (local path or fsspec URL).

    A CSV / TSV / JSONL record that cannot be read as one row (see `read_delimited` and
    `read_jsonl`) is kept, not dropped: the table then also has the columns MALFORMED,
    SOURCE_LINE and RAW_RECORD, for ingestion to quarantine it with its line number.
    """
    kind = READERS.get(PurePosixPath(path.split("?")[0]).suffix.lower())
    if kind is None:
        raise SeedFileError(
            f"seed file {path}: unsupported extension (use .csv, .tsv, .jsonl or .parquet)"
        )
    try:
        with fsspec.open(path, "rb", **storage_options) as handle:
            if kind == "parquet":
                return pd.read_parquet(handle)
            raw = handle.read()
    except FileNotFoundError:
        raise SeedFileError(
            f"seed file {path}: not found (check source_data.dataset.csv.file_path)"
        ) from None
    except IsADirectoryError:
        raise SeedFileError(
            f"seed file {path}: is a folder, not a file (check source_data.dataset.csv.file_path)"
        ) from None
    except Exception as error:  # noqa: BLE001 -- fsspec/pyarrow raise many types; the message is what matters
        raise SeedFileError(
            f"seed file {path}: cannot be read ({type(error).__name__}: {error})"
        ) from None
    if not raw.strip():
        raise SeedFileError(f"seed file {path}: the file is empty")
    # surrogateescape keeps undecodable bytes visible per row instead of failing the whole file
    text = raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    try:
        if kind == "jsonl":
            return read_jsonl(text)
        return read_delimited(text, "\t" if path.lower().endswith(".tsv") else ",")
    except ValueError as error:
        raise SeedFileError(f"seed file {path}: not valid {kind.upper()} ({error})") from None


def read_delimited(text: str, delimiter: str) -> pd.DataFrame:
    """Return the records of CSV / TSV text under its header row, every cell as text ("" is null).

    A record is malformed, and kept aside with the reason, when
    - it has more or fewer fields than the header (a ragged line);
    - its quoting is broken: a quote closes in the middle of a field, or never closes;
    - it spans several lines and one of the lines it swallowed reads, on its own, as a complete
      row of this file: as many fields as the header, no quote, and in every column whose
      well-formed rows take only a few values (a label column) one of those values. That is a
      stray quote merging rows, not a text with line breaks in it.
    """
    lines = io.StringIO(text, newline="").readlines()
    # no field is longer than the text: lift the csv module's 128 KiB field limit to it
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    reader = csv.reader(lines, delimiter=delimiter, strict=False)
    header: list[str] | None = None
    records: list[tuple[int, int, list[str]]] = []
    start = 1
    for fields in reader:
        if fields and header is None:
            header = fields
        elif fields:
            records.append((start, reader.line_num, fields))
        start = reader.line_num + 1
    if header is None or not records:
        raise ValueError("a header row and at least one record are needed")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ValueError(f"the header names column(s) {', '.join(repeated)} more than once")
    width = len(header)
    problems = {
        first: _record_problem(fields, lines[first - 1 : last], width, delimiter)
        for first, last, fields in records
    }
    usual = _usual_values([fields for first, _, fields in records if not problems[first]], width)
    for first, last, _ in records:
        if not problems[first] and last > first:
            problems[first] = _swallowed_row(lines[first:last], width, delimiter, usual, first)
    rows = [[*(fields + [""] * width)[:width]] for _, _, fields in records]
    table = pd.DataFrame(rows, columns=header, dtype=object).replace("", None)
    if any(problems.values()):
        table[MALFORMED] = [problems[first] for first, _, _ in records]
        table[SOURCE_LINE] = [first for first, _, _ in records]
        table[RAW_RECORD] = [
            "".join(lines[first - 1 : last]) if problems[first] else ""
            for first, last, _ in records
        ]
    return table


def _record_problem(fields: list[str], lines: list[str], width: int, delimiter: str) -> str:
    """Return why a record is not one row of `width` fields, or ""."""
    if len(fields) != width:
        return f"{len(fields)} fields where the header has {width}"
    try:
        list(csv.reader(lines, delimiter=delimiter, strict=True))
    except csv.Error as error:
        return (
            f"broken quoting ({error}): a quote inside a field must be doubled, or the field quoted"
        )
    return ""


def _usual_values(rows: list[list[str]], width: int) -> dict[int, set[str]]:
    """Return, for each column whose well-formed rows take few distinct values, those values."""
    usual = {}
    for column in range(width):
        values = {row[column] for row in rows}
        if len(values) <= min(FEW_VALUES, len(rows) // 2):
            usual[column] = values
    return usual


def _swallowed_row(
    swallowed: list[str], width: int, delimiter: str, usual: dict[int, set[str]], first: int
) -> str:
    """Return why a multi-line record looks like rows merged by a stray quote, or ""."""
    for offset, line in enumerate(swallowed, start=1):
        if '"' in line:
            continue
        fields = next(csv.reader([line], delimiter=delimiter), [])
        if len(fields) == width and all(
            fields[column] in values for column, values in usual.items()
        ):
            return (
                f"a quoted field opened on line {first} runs on over line {first + offset}, which reads as a "
                f"row of its own: check the quotes on line {first}"
            )
    return ""


def read_jsonl(text: str) -> pd.DataFrame:
    """Return one row per JSON-object line; a line that is not a JSON object is kept aside as malformed."""
    records: list[dict[str, Any]] = []
    problems: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append((number, f"not valid JSON ({error.msg}, column {error.colno})", line))
            continue
        if not isinstance(record, dict):
            problems.append((number, "not a JSON object", line))
            continue
        records.append({**record, SOURCE_LINE: number})
    if not records:
        number, problem, _ = problems[0]
        raise ValueError(f"no line is a JSON object (line {number}: {problem})")
    table = pd.DataFrame(records, dtype=object)
    if problems:
        bad = pd.DataFrame(
            [{SOURCE_LINE: n, MALFORMED: p, RAW_RECORD: raw} for n, p, raw in problems],
            dtype=object,
        )
        table = pd.concat([table.assign(**{MALFORMED: "", RAW_RECORD: ""}), bad], ignore_index=True)
        return table.sort_values(SOURCE_LINE, kind="stable").reset_index(drop=True)
    return table.drop(columns=SOURCE_LINE)


def read_huggingface(
    name: str, split: str, revision: str, storage_options: dict[str, Any]
) -> pd.DataFrame:
    """Return one split of a Hugging Face dataset: a Hub id, a save_to_disk folder or parquet files."""
    import datasets

    fs, _, _ = fsspec.get_fs_token_paths(name, storage_options=storage_options)
    local_or_remote_path = "://" in name or name.startswith(("/", ".")) or fs.exists(name)
    try:
        if local_or_remote_path and name.rstrip("/").endswith(".parquet"):
            loaded = datasets.load_dataset(
                "parquet", data_files={split: name}, split=split, storage_options=storage_options
            )
        elif local_or_remote_path:
            loaded = datasets.load_from_disk(name, storage_options=storage_options)
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise SeedFileError(
                        f"seed dataset {name}: no split {split!r} (splits: {', '.join(loaded)})"
                    )
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(name, split=split, revision=revision or None)
    except SeedFileError:
        raise
    except FileNotFoundError as error:
        raise SeedFileError(f"seed dataset {name}: not found ({error})") from None
    except Exception as error:  # noqa: BLE001 -- the Hub client raises many types (offline, auth, missing split)
        raise SeedFileError(
            f"seed dataset {name} (split {split}): cannot be loaded ({type(error).__name__}: {error})"
        ) from None
    return loaded.to_pandas()
