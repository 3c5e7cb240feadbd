"""`run_data_generation` with the judge on: synthesis moves aside, the final folder holds the judged data."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import datasets
import pandas as pd

from judgeforge import run_data_generation
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.openai_server import Reply

COMPLAINT_EXAMPLE = next(path for path in EXAMPLES if path.stem == "binary_single_customer_complaint")
REQUESTED_CLASS = re.compile(r"new, different examples? of class (\w+):")


def generator_and_judge():
    """Return a responder: generation calls get a new example; the judge always answers 0 (not a complaint)."""
    counter = itertools.count()

    def respond(request) -> Reply:
        schema = request.body.get("response_format", {}).get("json_schema", {}).get("name")
        if schema == "judge_label":
            return Reply.json({"label": "0", "rationale": "no problem reported"})
        wanted = REQUESTED_CLASS.search(request.last_user_message).group(1)
        return Reply.json({"examples": [{"text": f"A {wanted} message, number {next(counter)}"}]})

    return respond


def test_run_data_generation_with_labelling_relabels_synthetic_rows(project_copy: Path, openai_server, tmp_path: Path) -> None:
    openai_server.respond_with(generator_and_judge())
    run_yaml = loopback_run_yaml(
        COMPLAINT_EXAMPLE,
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__metric__llmaj_source_prompt="Is this customer message a complaint?\nMessage: {text}",
        data_generation__labelling={"enabled": True, "disagreement_policy": "relabel"},
    )
    path = run_data_generation(config_path=run_yaml, project_path=project_copy)

    final = datasets.load_from_disk(str(project_copy / path))["train"].to_pandas()
    generated = datasets.load_from_disk(str(project_copy / f"{path}-generated"))["train"].to_pandas()
    synthetic = final["source"] == "synthetic"
    assert set(final.loc[synthetic, "label"]) == {"0"}
    assert set(generated.loc[generated["source"] == "synthetic", "label"]) == {"0", "1"}
    assert final.loc[~synthetic, "label"].tolist() == generated.loc[generated["source"] == "seed", "label"].tolist()
    report = json.loads((project_copy / "data/08_reporting/labelling_report.json").read_text())
    assert report["disagreement_policy"]["relabelled"] == int((generated.loc[generated["source"] == "synthetic", "label"] == "1").sum()) > 0
    judge_labels = pd.read_parquet(project_copy / "data/02_intermediate/judge_labels.parquet")
    assert len(judge_labels) == len(generated) and set(judge_labels["status"]) == {"ok"}
