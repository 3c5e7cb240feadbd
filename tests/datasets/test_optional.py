"""Optional stage outputs: saved like their kedro-datasets type, None when the file is absent."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from judgeforge.datasets import optional


@pytest.mark.parametrize(
    ("dataset_type", "suffix", "data"),
    [
        (optional.JSONDataset, "json", {"status": "ok", "rows": [1, 2]}),
        (
            optional.ParquetDataset,
            "parquet",
            pd.DataFrame({"row_id": ["0", "1"], "score": [0.5, 0.25]}),
        ),
        (
            optional.CSVDataset,
            "csv",
            pd.DataFrame({"row_id": ["a", "b"], "reason": ["duplicate", "empty_text"]}),
        ),
    ],
)
def test_absent_file_loads_as_none_and_saved_data_loads_back(
    dataset_type, suffix: str, data, tmp_path: Path
) -> None:
    save_args = {"index": False} if suffix == "csv" else None
    dataset = dataset_type(filepath=str(tmp_path / f"out.{suffix}"), save_args=save_args)
    assert dataset.load() is None

    dataset.save(data)
    loaded = dataset.load()
    if isinstance(data, pd.DataFrame):
        pd.testing.assert_frame_equal(loaded.astype(data.dtypes.to_dict()), data)
    else:
        assert loaded == data


def test_a_file_that_exists_but_cannot_be_read_still_fails(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(Exception, match="broken.json"):
        optional.JSONDataset(filepath=str(broken)).load()
