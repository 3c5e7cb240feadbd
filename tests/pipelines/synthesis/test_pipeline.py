"""The synthesis pipeline through Kedro runners, and a killed run resumed without re-paying."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from judgeforge.config.data_generation import LabellingConfig
from judgeforge.config.diversity import DiversityConfig
from judgeforge.datasets.documents import DOCUMENT_COLUMNS
from judgeforge.pipelines.synthesis import create_pipeline
from tests.pipelines.synthesis.conftest import generation_config, unique_examples_responder
from tests.support.commands import kedro, kill_once
from tests.support.loopback_parameters import write_loopback_parameters
from tests.support.memory import KeptMemoryDataset
from tests.support.openai_server import Reply


def in_memory_catalog(
    server, client_factory, metric, llm, columns, sampling, output, enhancement, holdout
) -> DataCatalog:
    """Return the synthesis pipeline's inputs as an in-memory catalog, clients on the loopback server."""
    return DataCatalog(
        {
            "holdout_table": MemoryDataset(holdout),
            "enhancement_table": MemoryDataset(enhancement),
            "generator_llm": MemoryDataset(client_factory(server), copy_mode="assign"),
            "generator_pool": MemoryDataset({}, copy_mode="assign"),
            "input_documents": MemoryDataset(pd.DataFrame(columns=DOCUMENT_COLUMNS)),
            "saved_topic_tree": MemoryDataset({}, copy_mode="assign"),
            "judge_llm": MemoryDataset(client_factory(server, "judge.sqlite"), copy_mode="assign"),
            "params:data_generation.labelling": MemoryDataset(
                LabellingConfig(), copy_mode="assign"
            ),
            "params:data_generation.metric": MemoryDataset(metric, copy_mode="assign"),
            "params:data_generation.llm": MemoryDataset(llm, copy_mode="assign"),
            "params:data_generation.generation": MemoryDataset(
                generation_config(total_examples=6), copy_mode="assign"
            ),
            "params:data_generation.diversity": MemoryDataset(
                DiversityConfig(), copy_mode="assign"
            ),
            "params:data_generation.source_data.dataset.columns": MemoryDataset(
                columns, copy_mode="assign"
            ),
            "params:data_generation.source_data.sampling": MemoryDataset(
                sampling, copy_mode="assign"
            ),
            "params:data_generation.output": MemoryDataset(output, copy_mode="assign"),
            "generation_report": KeptMemoryDataset(),
        }
    )


def test_pipeline_runs_on_an_in_memory_catalog(
    openai_server, client_factory, metric, llm, columns, sampling, output, enhancement, holdout
) -> None:
    openai_server.respond_with(unique_examples_responder())
    catalog = in_memory_catalog(
        openai_server, client_factory, metric, llm, columns, sampling, output, enhancement, holdout
    )
    SequentialRunner().run(create_pipeline(), catalog)
    report = catalog.load("generation_report")
    assert report["requested_total"] == report["delivered_total"] == 6
    assert report["per_class"] == {
        "1": {"requested": 3, "delivered": 3},
        "0": {"requested": 3, "delivered": 3},
    }
    assert report["usage"]["succeeded"] == 6
    dataset = catalog.load("generated_dataset")
    assert dataset["train"].num_rows == 6 + len(enhancement)
    assert dataset["test"].num_rows == len(holdout)


def test_classes_derived_from_the_judge_prompt_drive_generation(
    openai_server, client_factory, metric, llm, columns, sampling, output, enhancement, holdout
) -> None:
    derived = {
        "description": "Is the message a complaint?",
        "class_labels": [
            {"name": "complaint", "label": "1", "rubric": "reports a problem"},
            {"name": "not_complaint", "label": "0", "rubric": "anything else"},
        ],
    }
    examples = unique_examples_responder()
    openai_server.respond_with(
        lambda request: (
            examples(request)
            if "new, different example" in request.last_user_message
            else Reply.json(derived)
        )
    )
    prompt_only = metric.model_copy(
        update={
            "description": None,
            "class_labels": None,
            "llmaj_source_prompt": "Answer 1 if the message is a complaint, else 0.",
        }
    )
    catalog = in_memory_catalog(
        openai_server,
        client_factory,
        prompt_only,
        llm,
        columns,
        sampling,
        output,
        enhancement,
        holdout,
    )
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    assert outputs["derived_metric"].load()["derived"] == ["description", "class_labels"]
    report = catalog.load("generation_report")  # consumed by require_delivery, so not a free output
    assert report["per_class"] == {
        "1": {"requested": 3, "delivered": 3},
        "0": {"requested": 3, "delivered": 3},
    }


TOTAL = 24
CONCURRENCY = 2


def test_killed_kedro_run_resumes_and_pays_for_nothing_twice(
    project_copy: Path, openai_server
) -> None:
    openai_server.respond_with(unique_examples_responder())
    openai_server.latency = 0.15
    write_loopback_parameters(
        project_copy,
        openai_server.base_url,
        generation={
            "total_examples": TOTAL,
            "examples_per_call": 1,
            "async_config": {"max_concurrent_requests": CONCURRENCY, "max_retries": 1},
        },
    )
    kedro_run = ["run", "--pipelines", "ingestion,synthesis"]

    kill_once(
        [sys.executable, "-m", "kedro", *kedro_run],
        project_copy,
        lambda: sum(r.delivered for r in openai_server.requests) >= 8,
        seconds=120,
    )
    deadline = time.monotonic() + 120
    while openai_server.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    paid_before = {r.fingerprint for r in openai_server.requests if r.delivered}
    assert 8 <= len(paid_before) < TOTAL
    assert not (project_copy / "data/03_primary/synthetic_examples.parquet").exists()

    openai_server.reset()
    openai_server.respond_with(unique_examples_responder())
    second = kedro(project_copy, *kedro_run, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]

    sent_again = {r.fingerprint for r in openai_server.requests} & paid_before
    assert len(sent_again) <= CONCURRENCY  # only answers in flight at the kill were lost
    assert openai_server.answered_twice() == []
    synthetic = pd.read_parquet(project_copy / "data/03_primary/synthetic_examples.parquet")
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert len(synthetic) == report["delivered_total"] == TOTAL
    assert report["usage"]["cache_hits"] >= len(paid_before) - CONCURRENCY


def test_the_generation_nodes_pass_their_datasets_in_the_order_of_generation_inputs() -> None:
    from dataclasses import fields

    from judgeforge.pipelines.synthesis.nodes import GenerationInputs
    from judgeforge.pipelines.synthesis.pipeline import GENERATION_DATASETS

    assert list(GENERATION_DATASETS) == [field.name for field in fields(GenerationInputs)]
