"""The catalog's config-driven entries: conf/base/catalog_*.yml read with the run config's values (judgeforge.run_globals)."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.io import DataCatalog, DatasetError

from judgeforge.config import validate_run_config
from judgeforge.config_loader import RUN_YAML, RunConfigLoader
from judgeforge.run_globals import output_location, project_location
from judgeforge.settings import CONFIG_LOADER_ARGS
from tests.conftest import PROJECT_ROOT


def catalog_for(raw_config: dict, project_path: Path, env: str = "base") -> DataCatalog:
    """Return the project's catalog as a run of `raw_config` in `project_path` sees it."""
    loader = RunConfigLoader(
        str(PROJECT_ROOT / "conf"),
        env=env,
        runtime_params={RUN_YAML: raw_config},
        project_path=project_path,
        **CONFIG_LOADER_ARGS,
    )
    return DataCatalog.from_config(loader["catalog"], credentials=loader["credentials"])


def test_relative_locations_are_anchored_at_the_project(tmp_path: Path) -> None:
    assert project_location("data/x.csv", tmp_path) == str(tmp_path / "data/x.csv")
    assert project_location("/abs/x.csv", tmp_path) == "/abs/x.csv"
    assert project_location("s3://bucket/x.csv", tmp_path) == "s3://bucket/x.csv"


def test_outputs_under_data_follow_data_root(tmp_path: Path) -> None:
    assert output_location("./data/generated_data", tmp_path, "data") == str(
        tmp_path / "data/generated_data"
    )
    assert (
        output_location("./data/generated_data", tmp_path, "s3://bucket/jf")
        == "s3://bucket/jf/generated_data"
    )
    assert output_location("out/generated", tmp_path, "s3://bucket/jf") == str(
        tmp_path / "out/generated"
    )
    assert output_location("/abs/generated", tmp_path, "s3://bucket/jf") == "/abs/generated"


def test_seed_data_and_dataset_folders_follow_the_parameters(
    raw_config: dict, tmp_path: Path
) -> None:
    raw_config["data_generation"]["source_data"]["dataset"]["csv"]["file_path"] = "seeds/mine.jsonl"
    raw_config["data_generation"]["output"]["local_path"] = "out"
    catalog = catalog_for(raw_config, tmp_path)
    assert catalog.get("seed_data")._describe()["file_path"] == str(tmp_path / "seeds/mine.jsonl")
    repo = raw_config["data_generation"]["output"]["dataset"]["repo_name"]
    assert catalog.get("labelled_dataset")._describe()["path"] == str(tmp_path / "out" / repo)


def test_clients_carry_provider_override_engine_settings_and_catalog_cache(
    raw_config: dict, tmp_path: Path
) -> None:
    generation = raw_config["data_generation"]
    generation["llm"] = {
        "provider": "openai",
        "model": "gpt-4.1",
        "embedding_model": "all-MiniLM-L6-v2",
        "base_url": "http://127.0.0.1:9/v1",
    }
    generation["generation"] = {
        "llm_provider": "gemini",
        "llm_model": "gemini-2.5-flash",
        "async_config": {"max_concurrent_requests": 7, "adaptive_concurrency": False},
    }
    catalog = catalog_for(raw_config, tmp_path)
    clients = {name: catalog.get(name) for name in ("generator_llm", "embedding_client")}
    clients["generator_llm"]._credentials = {"api_key": "sk-secret-value"}
    generator = clients["generator_llm"]._options
    assert (generator["provider"], generator["model"], generator["base_url"]) == (
        "gemini",
        "gemini-2.5-flash",
        None,
    )
    assert generator["max_concurrent_requests"] == 7 and generator["adaptive_concurrency"] is False
    assert generator["cache_path"] == str(tmp_path / "data/02_intermediate/llm_cache.sqlite")
    embedder = clients["embedding_client"]._options
    assert embedder["provider"] == "local"  # MiniLM needs no key, whatever the chat provider
    assert "sk-secret-value" not in repr(clients["generator_llm"]._describe())


def test_artifacts_move_to_output_local_path_and_index_dir(
    raw_config: dict, tmp_path: Path
) -> None:
    generation = raw_config["data_generation"]
    generation["output"]["local_path"] = "generated"
    generation["data_quality_metrics"] = {
        "artifact_subdir": "quality",
        "drift": {"index_dir": "/tmp/idx", "output_filename": "scores.parquet"},
    }
    catalog = catalog_for(raw_config, tmp_path)
    assert str(catalog.get("drift_scores")._filepath) == str(
        tmp_path / "generated/quality/scores.parquet"
    )
    assert str(catalog.get("diagnostics_summary")._filepath) == str(
        tmp_path / "generated/quality/diagnostics_summary.json"
    )
    assert str(catalog.get("faiss_index")._describe()["filepath"]) == "/tmp/idx/holdout.faiss"
    assert str(catalog.get("umap_plot")._filepath) == str(tmp_path / "generated/quality/umap.png")


def test_judge_artifacts_live_in_the_model_folder(raw_config: dict, tmp_path: Path) -> None:
    raw_config["training"]["output"] = {"model_name": "", "local_path": "models"}
    config = validate_run_config(raw_config)
    catalog = catalog_for(raw_config, tmp_path)
    folder = tmp_path / "models" / f"{config.metric_name}-judge"
    assert catalog.get("judge_model")._describe()["path"] == str(folder)
    assert str(catalog.get("training_metrics")._filepath) == str(folder / "metrics.json")


def test_s3_data_root_moves_every_output_but_the_judge(
    raw_config: dict, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    raw_config["data_generation"]["output"]["local_path"] = "./data/generated_data"
    catalog = catalog_for(raw_config, tmp_path, env="s3")
    root = "s3://my-team-bucket/judgeforge"
    repo = raw_config["data_generation"]["output"]["dataset"]["repo_name"]
    assert catalog.get("labelled_dataset")._describe()["path"] == f"{root}/generated_data/{repo}"
    assert str(catalog.get("drift_scores")._describe()["protocol"]) == "s3"
    assert catalog.get("judge_model")._describe()["path"].startswith(str(tmp_path))


@pytest.mark.parametrize("absent", ["data_generation", "training"])
def test_a_config_without_a_section_builds_every_entry_and_says_what_is_missing(
    raw_config: dict, tmp_path: Path, absent: str
) -> None:
    raw_config.pop(absent)
    raw_config["run_steps"] = [step for step in ("data_generation", "training") if step != absent]
    if absent == "data_generation":
        raw_config["training"]["dataset"] = {"name": "org/complaints"}
    catalog = catalog_for(raw_config, tmp_path)
    for name in catalog:
        catalog.get(name)  # every entry can be built, whichever section is absent
    entry, message = (
        ("generator_llm", "no data_generation section")
        if absent == "data_generation"
        else ("judge_model", "no training section")
    )
    with pytest.raises(DatasetError, match=message):
        catalog.load(entry)


def test_batch_applies_to_the_chat_clients_and_embeddings_stay_online(
    raw_config: dict, tmp_path: Path
) -> None:
    generation = raw_config["data_generation"]
    generation["llm"] = {
        "provider": "openai",
        "model": "gpt-4.1",
        "embedding_model": "text-embedding-3-small",
        "base_url": "http://127.0.0.1:9/v1",
    }
    generation["generation"] = {"async_config": {"batch": True}}
    catalog = catalog_for(raw_config, tmp_path)
    assert catalog.get("generator_llm")._options["batch"] is True
    assert catalog.get("judge_llm")._options["batch"] is True
    assert catalog.get("embedding_client")._options["batch"] is False
