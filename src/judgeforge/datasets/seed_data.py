"""Seed data from a CSV / JSONL / Parquet file or a Hugging Face dataset, as one DataFrame."""

from __future__ import annotations

import io
import json
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

READERS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


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
        return read_huggingface(self._hf_name or "", self._hf_split or "", self._hf_revision, self._storage_options)

    def _save(self, data: None) -> None:
        raise DatasetError("seed data is read-only: edit the source file instead")


def read_table_file(path: str, storage_options: dict[str, Any]) -> pd.DataFrame:
    """Return the rows of a CSV, JSONL or Parquet file (local path or fsspec URL)."""
    kind = READERS.get(PurePosixPath(path.split("?")[0]).suffix.lower())
    if kind is None:
        raise DatasetError(f"seed file {path}: unsupported extension (use .csv, .tsv, .jsonl or .parquet)")
    try:
        with fsspec.open(path, "rb", **storage_options) as handle:
            if kind == "parquet":
                return pd.read_parquet(handle)
            raw = handle.read()
    except FileNotFoundError:
        raise DatasetError(f"seed file {path}: not found (check source_data.dataset.csv.file_path)") from None
    except Exception as error:  # noqa: BLE001 -- fsspec/pyarrow raise many types; the message is what matters
        raise DatasetError(f"seed file {path}: cannot be read ({type(error).__name__}: {error})") from None
    if not raw.strip():
        raise DatasetError(f"seed file {path}: the file is empty")
    try:
        if kind == "jsonl":
            return _read_jsonl(raw)
        separator = "\t" if path.lower().endswith(".tsv") else ","
        # surrogateescape keeps undecodable bytes visible per row instead of failing the whole file
        return pd.read_csv(
            io.BytesIO(raw), sep=separator, dtype=object, keep_default_na=False, na_values=[""],
            encoding="utf-8", encoding_errors="surrogateescape",
        )
    except ValueError as error:
        raise DatasetError(f"seed file {path}: not valid {kind.upper()} ({error})") from None


def _read_jsonl(raw: bytes) -> pd.DataFrame:
    lines = raw.decode("utf-8", errors="surrogateescape").splitlines()
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"line {number}: {error.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number}: each line must be a JSON object")  # noqa: TRY004 -- reported as bad data
        records.append(record)
    return pd.DataFrame(records, dtype=object)


def read_huggingface(name: str, split: str, revision: str, storage_options: dict[str, Any]) -> pd.DataFrame:
    """Return one split of a Hugging Face dataset: a Hub id, a save_to_disk folder or parquet files."""
    import datasets

    fs, _, _ = fsspec.get_fs_token_paths(name, storage_options=storage_options)
    local_or_remote_path = "://" in name or name.startswith(("/", ".")) or fs.exists(name)
    try:
        if local_or_remote_path and name.rstrip("/").endswith(".parquet"):
            loaded = datasets.load_dataset("parquet", data_files={split: name}, split=split, storage_options=storage_options)
        elif local_or_remote_path:
            loaded = datasets.load_from_disk(name, storage_options=storage_options)
            if isinstance(loaded, datasets.DatasetDict):
                if split not in loaded:
                    raise DatasetError(f"seed dataset {name}: no split {split!r} (splits: {', '.join(loaded)})")
                loaded = loaded[split]
        else:
            loaded = datasets.load_dataset(name, split=split, revision=revision or None)
    except DatasetError:
        raise
    except FileNotFoundError as error:
        raise DatasetError(f"seed dataset {name}: not found ({error})") from None
    except Exception as error:  # noqa: BLE001 -- the Hub client raises many types (offline, auth, missing split)
        raise DatasetError(f"seed dataset {name} (split {split}): cannot be loaded ({type(error).__name__}: {error})") from None
    return loaded.to_pandas()
