"""The DatasetDict dataset: a folder per split, and data passed through unchanged to the folder it came from."""

from __future__ import annotations

from pathlib import Path

import datasets
import pandas as pd

from judgeforge.datasets import DatasetDictDataset


def splits(texts: list[str]) -> datasets.DatasetDict:
    return datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_pandas(pd.DataFrame({"text": texts})),
            "test": datasets.Dataset.from_pandas(pd.DataFrame({"text": ["t"]})),
        }
    )


def test_saving_back_the_folder_it_was_loaded_from_keeps_it(tmp_path: Path) -> None:
    folder = DatasetDictDataset(str(tmp_path / "final"))
    folder.save(splits(["a", "b"]))
    passed_through = DatasetDictDataset(str(tmp_path / "final")).load()
    DatasetDictDataset(str(tmp_path / "final")).save(
        passed_through
    )  # datasets alone refuses: it reads these files
    assert folder.load()["train"]["text"] == ["a", "b"]
    elsewhere = DatasetDictDataset(str(tmp_path / "copy"))
    elsewhere.save(passed_through)
    assert elsewhere.load()["train"]["text"] == ["a", "b"]
    folder.save(splits(["c"]))  # new data replaces the folder
    assert folder.load()["train"]["text"] == ["c"]
