"""`kedro run --pipelines publishing` in a project copy, the Hub recorded at the HfApi boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import datasets
import pandas as pd

from tests.conftest import PROJECT_ROOT

# Runs the kedro CLI with HfApi replaced by the recording one of test_hub, then writes its calls.
KEDRO_WITH_RECORDING_HUB = textwrap.dedent(
    """
    import json, os
    from judgeforge.publishing import hub
    from tests.support.recording_hub import RecordingHfApi
    from kedro.framework.cli import main

    hub.HfApi = RecordingHfApi
    try:
        main()
    finally:
        calls = [[name, {key: sorted(value) if key == "files" else value for key, value in kwargs.items() if key != "folder_path"}] for name, kwargs in RecordingHfApi.calls]
        with open(os.environ["RECORDED_HUB_CALLS"], "w") as out:
            json.dump(calls, out, default=str)
    """
)


def final_dataset(folder: Path) -> None:
    """Write a small train/test DatasetDict where the default parameters put the final dataset."""
    train = pd.DataFrame(
        {
            "row_id": ["syn-0", "syn-1", "3"],
            "text": ["late again", "thanks", "broken"],
            "label": ["1", "0", "1"],
            "source": ["synthetic", "synthetic", "seed"],
        }
    )
    test = pd.DataFrame(
        {"row_id": ["9"], "text": ["where is it"], "label": ["1"], "source": ["seed"]}
    )
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_pandas(train), "test": datasets.Dataset.from_pandas(test)}
    ).save_to_disk(str(folder))


def test_kedro_run_publishing_pushes_the_final_folder_to_the_hub(
    project_copy: Path, tmp_path: Path
) -> None:
    final_dataset(project_copy / "data/generated_data/customer_complaint")
    script, record = tmp_path / "kedro_recorded.py", tmp_path / "calls.json"
    script.write_text(KEDRO_WITH_RECORDING_HUB, encoding="utf-8")
    params = "data_generation.output.push_to_hub=true,data_generation.output.hub.organization=acme"
    env = os.environ | {
        "HF_TOKEN": "hf_test_token",
        "RECORDED_HUB_CALLS": str(record),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)]),
    }
    result = subprocess.run(
        [sys.executable, str(script), "run", "--pipelines", "publishing", "--params", params],
        cwd=project_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    (create, created), (upload, uploaded) = json.loads(record.read_text())
    assert (create, created) == (
        "create_repo",
        {
            "repo_id": "acme/customer_complaint",
            "repo_type": "dataset",
            "private": True,
            "exist_ok": True,
        },
    )
    assert upload == "upload_folder" and uploaded["token"] == "hf_test_token"
    assert uploaded["files"] == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
    ]
    receipt = json.loads((project_copy / "data/08_reporting/dataset_publication.json").read_text())
    assert (
        receipt["hub"]["repo_id"] == "acme/customer_complaint" and receipt["object_store"] is None
    )
    card = (project_copy / "data/08_reporting/dataset_card.md").read_text()
    assert "| train | 2 | 1 | 3 |" in card  # complaint, not_complaint, total
    assert "LLM-judge labels" not in card  # no labelling report on disk: the card leaves it out
