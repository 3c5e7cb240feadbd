"""Hub pushes recorded at the HfApi boundary: calls, staged files, the card, retries, the missing-token error."""

from __future__ import annotations

import copy
from pathlib import Path

import datasets
import httpx2
import pandas as pd
import pytest
from huggingface_hub.errors import HfHubHTTPError
from kedro.pipeline import Node, Pipeline

from judgeforge.config import validate_run_config
from judgeforge.hooks import RunConfigHook
from judgeforge.pipelines.publishing import create_pipeline as publishing_pipeline
from judgeforge.pipelines.publishing.nodes import (
    publish_dataset,
    publish_judge_model,
    write_dataset_card,
)
from judgeforge.publishing.hub import Hub, HubError
from tests.config.conftest import _MINIMAL_RUN_CONFIG


def http_error(status: int) -> HfHubHTTPError:
    return HfHubHTTPError(f"HTTP {status}", response=httpx2.Response(status, request=httpx2.Request("POST", "https://huggingface.co/api")))


def run_config(**output):
    raw = copy.deepcopy(_MINIMAL_RUN_CONFIG)
    raw["data_generation"]["output"].update(output)
    return validate_run_config(raw)


@pytest.fixture
def config():
    return run_config(push_to_hub=True, hub={"organization": "acme"}).data_generation


@pytest.fixture
def final_dataset() -> datasets.DatasetDict:
    train = pd.DataFrame({"row_id": ["syn-0", "syn-1", "syn-2", "seed-3"], "text": ["a", "b", "c", "d"], "label": ["1", "1", "0", "0"], "source": ["synthetic"] * 3 + ["seed"]})
    test = pd.DataFrame({"row_id": ["9"], "text": ["e"], "label": ["0"], "source": ["seed"]})
    return datasets.DatasetDict({"train": datasets.Dataset.from_pandas(train), "test": datasets.Dataset.from_pandas(test)})


LABELLING_REPORT = {
    "status": "ok", "judge": {"provider": "openai", "model": "gpt-4.1"}, "rows_judged": 4, "invalid_answers": 1,
    "agreement": {"overall": {"compared": 3, "agree": 2, "rate": 0.6667}},
    "disagreement_policy": {"policy": "relabel", "relabelled": 1, "dropped": 0},
}
DIAGNOSTICS = {"status": "ok", "rows": {"synthetic": 3, "holdout": 1}, "drift": {"flagged": 1}, "text_length": {"huge": "left out"}}


def test_dataset_card_has_metric_config_counts_and_summaries(final_dataset, config) -> None:
    card = write_dataset_card(final_dataset, config.metric, config, LABELLING_REPORT, DIAGNOSTICS)
    assert card.startswith("---\npretty_name: toxicity\n")
    assert "- split: train\n    path: data/train-*" in card
    assert "| toxic | `1` | Insults, threats or slurs. |" in card
    assert "| train | 2 | 2 | 4 |" in card and "| test | 0 | 1 | 1 |" in card
    assert "total_examples: 2000" in card and "generator: openai/gpt-4.1" in card
    assert "Agreement with the generator's labels: 2/3 (66.7%)." in card
    assert '"flagged": 1' in card and "huge" not in card
    assert 'load_dataset("acme/toxicity-data")' in card
    bare = write_dataset_card(final_dataset, config.metric, config, {"status": "absent"}, {"status": "absent"})
    assert "LLM-judge labels" not in bare and "diagnostics" not in bare


def test_publish_dataset_creates_a_private_repo_and_uploads_parquet_and_card(recording_api, final_dataset, config) -> None:
    receipt = publish_dataset(final_dataset, "# card", config.output, Hub("hf_secret"), object_store=None)

    (create, kwargs), (upload, uploaded) = recording_api.calls
    assert create == "create_repo" and kwargs == {"repo_id": "acme/toxicity-data", "repo_type": "dataset", "private": True, "exist_ok": True}
    assert upload == "upload_folder" and uploaded["repo_id"] == "acme/toxicity-data" and uploaded["repo_type"] == "dataset"
    assert sorted(uploaded["files"]) == ["README.md", "data/test-00000-of-00001.parquet", "data/train-00000-of-00001.parquet"]
    assert uploaded["files"]["README.md"] == b"# card"
    assert uploaded["token"] == "hf_secret"
    assert receipt["hub"] == {"repo_id": "acme/toxicity-data", "repo_type": "dataset", "private": True, "url": "https://huggingface.co/datasets/acme/toxicity-data", "commit": "abc123"}
    assert receipt["object_store"] is None


def test_transient_failures_are_retried_and_others_are_not(recording_api, final_dataset, config) -> None:
    recording_api.failures = [http_error(503), httpx2.ConnectError("reset")]
    publish_dataset(final_dataset, "card", config.output, Hub("hf_x", backoff_seconds=0), object_store=None)
    assert [name for name, _ in recording_api.calls] == ["create_repo", "upload_folder"]

    recording_api.calls, recording_api.failures = [], [http_error(403)]
    with pytest.raises(HfHubHTTPError):
        publish_dataset(final_dataset, "card", config.output, Hub("hf_x", backoff_seconds=0), object_store=None)
    assert [name for name, _ in recording_api.calls] == ["create_repo"]


def test_missing_token_fails_before_any_call(recording_api, final_dataset, config) -> None:
    with pytest.raises(HubError, match="pushing dataset acme/toxicity-data needs a Hugging Face token: set HF_TOKEN"):
        publish_dataset(final_dataset, "card", config.output, Hub(None), object_store=None)
    assert recording_api.calls == []
    assert "hf_" not in repr(Hub("hf_secret"))


def test_hook_stops_a_pushing_run_without_token_before_any_node(monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    hook = RunConfigHook()
    hook._config = run_config(push_to_hub=True)
    with pytest.raises(HubError, match="^data_generation.output.push_to_hub needs a Hugging Face token"):
        hook.before_pipeline_run({}, publishing_pipeline(), None)
    other = Pipeline([Node(lambda x: x, "seed_data", "seed_rows", name="n")])
    hook.before_pipeline_run({}, other, None)  # nothing pushed: no token needed
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    hook.before_pipeline_run({}, publishing_pipeline(), None)


def test_publish_judge_model_pushes_the_saved_folder(recording_api, s3_server, tmp_path) -> None:
    from judgeforge.config.training import TrainingConfig
    from judgeforge.publishing import ObjectStore

    class SavedJudge:
        def save(self, folder: Path) -> None:
            folder.mkdir(parents=True)
            (folder / "adapter_model.safetensors").write_bytes(b"\x00weights")

    raw = copy.deepcopy(_MINIMAL_RUN_CONFIG)["training"]
    raw["output"] = {"model_name": "acme/toxicity-judge", "push_to_hub": True, "push_to_object_store": True, "object_store_bucket": "judgeforge-test"}
    training = TrainingConfig.model_validate(raw)
    receipt = publish_judge_model(SavedJudge(), "# judge", training, Hub("hf_x"), ObjectStore(s3_server.storage_options))
    (_, created), (_, uploaded) = recording_api.calls
    assert created == {"repo_id": "acme/toxicity-judge", "repo_type": "model", "private": True, "exist_ok": True}
    assert uploaded["files"] == {"README.md": b"# judge", "adapter_model.safetensors": b"\x00weights"}
    assert receipt["object_store"]["url"] == "s3://judgeforge-test/finetuned_models/acme/toxicity-judge.tar.gz"
