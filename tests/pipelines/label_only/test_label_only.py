"""Label-only mode end to end: the pipeline through a runner, and `run_data_generation` on a run YAML."""

from __future__ import annotations

import json
import re
from pathlib import Path

import datasets
import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from judgeforge import run_data_generation
from judgeforge.config.data_generation import DatasetColumns
from judgeforge.pipelines.label_only import create_pipeline
from tests.pipelines.labelling.conftest import labelling
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.memory import KeptMemoryDataset
from tests.support.openai_server import Reply

COMPLAINT_EXAMPLE = next(
    path for path in EXAMPLES if path.stem == "binary_single_customer_complaint"
)
COMPLAINT_WORDS = re.compile(
    r"broken|late|never|refund|wrong|missing|damaged|charged", re.IGNORECASE
)


def keyword_judge(request) -> Reply:
    """Answer 1 when the message in the prompt has a complaint word, else 0; 'gibberish' rows never get JSON."""
    prompt = request.last_user_message
    if "gibberish" in prompt:
        return Reply.text("no idea")
    return Reply.json(
        {
            "label": "1" if COMPLAINT_WORDS.search(prompt.split("Answer with JSON")[0]) else "0",
            "rationale": "keyword",
        }
    )


def test_label_only_pipeline_labels_every_row_and_keeps_the_holdout(
    openai_server, judge_client, metric, output
) -> None:
    openai_server.respond_with(keyword_judge)
    unlabelled = pd.DataFrame(
        {"text": ["My order never came", "Thanks, all good", "gibberish", "", "Item was broken"]}
    )
    holdout = pd.DataFrame(
        {"row_id": ["h1", "h2"], "text": ["Wrong size sent", "Nice shop"], "label": ["1", "0"]}
    )
    catalog = DataCatalog(
        {
            "label_only_train_data": MemoryDataset(unlabelled),
            "holdout_table": MemoryDataset(holdout),
            "judge_llm": MemoryDataset(judge_client(), copy_mode="assign"),
            "params:data_generation.metric": MemoryDataset(metric, copy_mode="assign"),
            "params:data_generation.labelling": MemoryDataset(
                labelling(label_only_mode=True, invalid_answer_retries=1), copy_mode="assign"
            ),
            "params:data_generation.output": MemoryDataset(output, copy_mode="assign"),
            "params:data_generation.source_data.dataset.columns": MemoryDataset(
                DatasetColumns(features=["text"], label=None), copy_mode="assign"
            ),
            "labelling_report": KeptMemoryDataset(),
            "params:data_generation.source_data.max_text_chars": MemoryDataset(100_000),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)

    labelled = catalog.load("labelled_dataset")
    train = labelled["train"].to_pandas()
    assert train[["row_id", "text", "label"]].values.tolist() == [
        ["0", "My order never came", "1"],
        ["1", "Thanks, all good", "0"],
        ["4", "Item was broken", "1"],
    ]
    assert labelled["test"].to_pandas()["label"].tolist() == ["1", "0"]
    report = catalog.load("labelling_report")
    assert (report["rows_judged"], report["valid_answers"], report["invalid_answers"]) == (4, 3, 1)
    assert report["agreement"]["overall"] == {"compared": 0, "agree": 0, "rate": None}
    assert report["judge_label_counts"] == {"1": 2, "0": 1}
    assert catalog.load("label_only_rejects")["reason"].tolist() == ["empty_text"]
    assert len(openai_server.requests) == 4 + 1  # the gibberish row asked once more


def test_run_data_generation_in_label_only_mode(
    project_copy: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(keyword_judge)
    messages = [
        "The charger is broken",
        "Love it",
        "Refund still missing",
        "Do you sell gift cards?",
    ]
    pd.DataFrame({"text": messages}).to_csv(
        project_copy / "data/01_raw/unlabelled.csv", index=False
    )
    run_yaml = loopback_run_yaml(
        COMPLAINT_EXAMPLE,
        openai_server.base_url,
        project_copy / "run.yaml",
        run_steps=["data_generation"],
        data_generation__metric__llmaj_source_prompt="Is this customer message a complaint?\nMessage: {text}",
        data_generation__labelling={"enabled": True, "label_only_mode": True},
        data_generation__source_data__dataset__csv__train_file_path="data/01_raw/unlabelled.csv",
    )
    path = run_data_generation(config_path=run_yaml, project_path=project_copy)

    assert path == str(project_copy / "data/generated_data/customer_complaint")
    splits = datasets.load_from_disk(str(project_copy / path))
    train = splits["train"].to_pandas()
    assert train["text"].tolist() == messages
    assert train["label"].tolist() == ["1", "0", "1", "0"]
    assert splits["test"].num_rows > 0 and set(splits["test"]["label"]) == {"0", "1"}
    report = json.loads((project_copy / "data/08_reporting/labelling_report.json").read_text())
    assert report["valid_answers"] == 4
    assert not (project_copy / "data/generated_data/customer_complaint-generated").exists()
    assert (
        all("/chat/completions" in r.path for r in openai_server.requests)
        and len(openai_server.requests) == 4
    )
