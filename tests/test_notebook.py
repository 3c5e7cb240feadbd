"""The walkthrough notebook, executed cell by cell in a real kernel so it cannot fall behind the code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT
from tests.pipelines.synthesis.conftest import unique_examples_responder
from tests.support.openai_server import Reply
from tests.support.tiny_judge import save_tiny_llama

NOTEBOOK = "judgeforge_walkthrough.ipynb"


def test_walkthrough_notebook_runs_from_validation_to_predictions(
    project_copy: Path, openai_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(PROJECT_ROOT / "notebooks", project_copy / "notebooks")
    examples = unique_examples_responder()
    openai_server.respond_with(
        lambda request: Reply() if request.path.endswith("/embeddings") else examples(request)
    )
    overrides = {
        # generation and embeddings from the loopback server, a tiny random base model to train:
        # the notebook's own steps, sized for a test
        "data_generation.llm": {
            "provider": "openai",
            "model": "test-model",
            "embedding_model": "text-embedding-3-small",
            "base_url": openai_server.base_url,
        },
        "data_generation.generation.total_examples": 8,
        "data_generation.data_quality_metrics.umap.enabled": False,
        "data_generation.data_quality_metrics.drift.index_dir": str(tmp_path / "faiss"),
        "training.model.model_local_path": str(save_tiny_llama(tmp_path / "tiny-llama")),
        "training.training.max_seq_length": 256,
        "training.training.per_device_train_batch_size": 8,
    }
    monkeypatch.setenv("JUDGEFORGE_NOTEBOOK_OVERRIDES", json.dumps(overrides))
    notebook = nbformat.read(project_copy / "notebooks" / NOTEBOOK, as_version=4)

    NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(project_copy / "notebooks")}},
    ).execute()

    outputs = [
        "".join(_text(output) for output in cell.get("outputs", []))
        for cell in notebook.cells
        if cell.cell_type == "code"
    ]
    everything = "\n".join(outputs)
    assert "notebook_run.yaml: valid" in everything
    assert (
        "data_generation.generation.total_examples: 0" in everything
    )  # the broken config's problems
    assert "probability_true" in everything and "probability_false" in everything
    assert any(
        output.get("data", {}).get("image/png")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
    )
    report = json.loads((project_copy / "data/08_reporting/generation_report.json").read_text())
    assert report["delivered_total"] == 8
    # the run YAML sits next to the example: its judge folder (relative) lands under examples/
    assert (project_copy / "examples/data/06_models/customer_complaint-judge/metrics.json").is_file()


def _text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output["text"]
    return output.get("data", {}).get("text/plain", "")
