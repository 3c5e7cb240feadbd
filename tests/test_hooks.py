"""RunConfigHook's binding of config-driven locations and clients into the catalog."""

from __future__ import annotations

from pathlib import Path

from judgeforge.config import validate_run_config
from judgeforge.hooks import (
    artifact_datasets,
    config_bound_datasets,
    judge_datasets,
    llm_client_datasets,
    project_location,
)

CATALOG = {
    "generator_llm": {"type": "judgeforge.datasets.LLMClientDataset", "cache_path": "data/cache.sqlite"},
    "embedding_client": {"type": "judgeforge.datasets.LLMClientDataset"},
    "drift_scores": {"type": "pandas.ParquetDataset", "filepath": "x.parquet"},
    "diagnostics_summary": {"type": "json.JSONDataset", "filepath": "x.json"},
    "faiss_index": {"type": "judgeforge.diagnostics.faiss_dataset.FaissIndexDataset", "filepath": "x.faiss"},
    "training_metrics": {"type": "json.JSONDataset", "filepath": "x.json"},
}


def test_relative_locations_are_anchored_at_the_project(tmp_path: Path) -> None:
    assert project_location("data/x.csv", tmp_path) == str(tmp_path / "data/x.csv")
    assert project_location("/abs/x.csv", tmp_path) == "/abs/x.csv"
    assert project_location("s3://bucket/x.csv", tmp_path) == "s3://bucket/x.csv"


def test_seed_data_and_dataset_folders_follow_the_parameters(raw_config: dict, tmp_path: Path) -> None:
    raw_config["data_generation"]["source_data"]["dataset"]["csv"]["file_path"] = "seeds/mine.jsonl"
    raw_config["data_generation"]["output"]["local_path"] = "out"
    bound = config_bound_datasets(validate_run_config(raw_config), None, tmp_path)
    assert bound["seed_data"]._describe()["file_path"] == str(tmp_path / "seeds/mine.jsonl")
    repo = raw_config["data_generation"]["output"]["dataset"]["repo_name"]
    assert bound["final_dataset"]._describe()["path"] == str(tmp_path / "out" / repo)


def test_clients_carry_provider_override_engine_settings_and_catalog_cache(raw_config: dict, tmp_path: Path) -> None:
    generation = raw_config["data_generation"]
    generation["llm"] = {"provider": "openai", "model": "gpt-4.1", "embedding_model": "all-MiniLM-L6-v2", "base_url": "http://127.0.0.1:9/v1"}
    generation["generation"] = {"llm_provider": "gemini", "llm_model": "gemini-2.5-flash", "async_config": {"max_concurrent_requests": 7, "adaptive_concurrency": False}}
    config = validate_run_config(raw_config).data_generation
    clients = llm_client_datasets(config, CATALOG, {"api_key": "sk-secret-value"}, tmp_path)
    generator = clients["generator_llm"]._options
    assert (generator["provider"], generator["model"], generator["base_url"]) == ("gemini", "gemini-2.5-flash", None)
    assert generator["max_concurrent_requests"] == 7 and generator["adaptive_concurrency"] is False
    assert generator["cache_path"] == str(tmp_path / "data/cache.sqlite")
    embedder = clients["embedding_client"]._options
    assert embedder["provider"] == "local"  # MiniLM needs no key, whatever the chat provider
    assert "sk-secret-value" not in repr(clients["generator_llm"]._describe())


def test_artifacts_move_to_output_local_path_and_index_dir(raw_config: dict, tmp_path: Path) -> None:
    generation = raw_config["data_generation"]
    generation["output"]["local_path"] = "generated"
    generation["data_quality_metrics"] = {"artifact_subdir": "quality", "drift": {"index_dir": "/tmp/idx", "output_filename": "scores.parquet"}}
    bound = artifact_datasets(validate_run_config(raw_config).data_generation, CATALOG, None, tmp_path)
    assert str(bound["drift_scores"]._filepath) == str(tmp_path / "generated/quality/scores.parquet")
    assert str(bound["diagnostics_summary"]._filepath) == str(tmp_path / "generated/quality/diagnostics_summary.json")
    assert str(bound["faiss_index"]._describe()["filepath"]) == "/tmp/idx/holdout.faiss"
    assert "umap_plot" not in bound  # only entries the catalog declares are rebound


def test_judge_artifacts_live_in_the_model_folder(raw_config: dict, tmp_path: Path) -> None:
    raw_config["training"]["output"] = {"model_name": "", "local_path": "models"}
    config = validate_run_config(raw_config)
    bound = judge_datasets(config, CATALOG, tmp_path)
    folder = tmp_path / "models" / f"{config.metric_name}-judge"
    assert bound["judge_model"]._describe()["path"] == str(folder)
    assert str(bound["training_metrics"]._filepath) == str(folder / "metrics.json")
