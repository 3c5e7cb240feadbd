"""Validate the run config before any work and bind config-driven locations into the catalog."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset, MemoryDataset

from judgeforge.config import RunConfig, validate_run_config
from judgeforge.config.data_generation import LOCAL_EMBEDDING_MODELS, DataGenerationConfig
from judgeforge.config.run import judge_output_dir
from judgeforge.datasets import DatasetDictDataset, JudgeModelDataset, LLMClientDataset, SeedDataset
from judgeforge.preflight import check_run
from judgeforge.publishing import (
    HubClientDataset,
    ObjectStoreDataset,
    ObjectStoreDatasetDict,
    archive_url,
)

log = logging.getLogger(__name__)

# Credentials entries: storage options for object-store URLs, and the LLM provider's key.
OBJECT_STORE_CREDENTIALS = "object_store"
LLM_CREDENTIALS = "llm"
HUB_CREDENTIALS = "hub"
# Outputs whose node pushes to the Hub, and the config switch that makes it push.
DATASET_PUBLICATION = "dataset_publication"
MODEL_PUBLICATION = "model_publication"
# Diagnostics artifacts written under output.local_path/<artifact_subdir>, by file name.
ARTIFACT_FILES = {
    "drift_reference": "drift_reference.parquet",
    "umap_coordinates": "umap_coordinates.parquet",
    "umap_plot": "umap.png",
    "drift_histogram_plot": "drift_histogram.png",
    "drift_by_class_plot": "drift_by_class.png",
    "diagnostics_summary": "diagnostics_summary.json",
    # the same summary, read (when present) by the publishing pipeline for the dataset card
    "card_diagnostics_summary": "diagnostics_summary.json",
}
FAISS_INDEX_FILE = "holdout.faiss"
# Files of the trained judge's folder, by catalog entry (judge_model is the folder itself).
JUDGE_FILES = {"training_metrics": "metrics.json", "training_log": "training_log.json", "model_card": "README.md"}
# Options of LLM client entries that the catalog (not the parameters) decides.
CATALOG_CLIENT_OPTIONS = ("cache_path", "prices")


class RunConfigHook:
    """Fails a run with every config problem at once, then points datasets where the config says."""

    def __init__(self) -> None:
        self._config: RunConfig | None = None
        self._project_path = Path.cwd()
        self._credentials: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Validate the merged parameters (base + env + runtime) before the catalog exists."""
        self._config = validate_run_config(context.config_loader["parameters"], source=f"parameters (env {context.env or 'local'})")
        self._project_path = Path(context.project_path)

    @hook_impl
    def after_catalog_created(self, catalog: Any, conf_catalog: dict[str, Any], conf_creds: dict[str, Any]) -> None:
        """Replace the config-driven catalog entries with datasets built from the run config."""
        if self._config is None:
            return
        credentials = self._credentials = conf_creds or {}
        bound = config_bound_datasets(self._config, credentials.get(OBJECT_STORE_CREDENTIALS), self._project_path)
        bound["hub_client"] = HubClientDataset(credentials=credentials.get(HUB_CREDENTIALS) or {})
        bound["object_store"] = ObjectStoreDataset(credentials=credentials.get(OBJECT_STORE_CREDENTIALS))
        if self._config.data_generation is not None:
            generation = self._config.data_generation
            bound.update(llm_client_datasets(generation, conf_catalog or {}, credentials.get(LLM_CREDENTIALS), self._project_path))
            bound.update(artifact_datasets(generation, conf_catalog or {}, credentials.get(OBJECT_STORE_CREDENTIALS), self._project_path))
        if self._config.training is not None:
            bound.update(judge_datasets(self._config, conf_catalog or {}, self._project_path))
        with _expected_replacements(bound):
            for name, dataset in bound.items():
                catalog[name] = dataset

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Fail before any node runs when the run lacks a token, a key or a writable output folder."""
        if self._config is not None:
            check_run(self._config, pipeline, self._credentials, self._project_path)


class _SkipReplacementWarnings(logging.Filter):
    """Drops Kedro's "Replacing dataset" warning for the entries this hook binds on purpose."""

    def __init__(self, names: set[str]):
        super().__init__()
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "Replacing dataset '%s'" and record.args and record.args[0] in self.names)


@contextmanager
def _expected_replacements(names: dict[str, Any]) -> Iterator[None]:
    catalog_logger = logging.getLogger("kedro.io.data_catalog")
    quiet = _SkipReplacementWarnings(set(names))
    catalog_logger.addFilter(quiet)
    try:
        yield
    finally:
        catalog_logger.removeFilter(quiet)


def project_location(path: str, project_path: Path) -> str:
    """Return a local relative path anchored at the project folder (as Kedro does for the catalog)."""
    if "://" in path or Path(path).is_absolute():
        return path
    return str(project_path / path)


def config_bound_datasets(config: RunConfig, credentials: dict[str, Any] | None, project_path: Path) -> dict[str, Any]:
    """Return the catalog entries whose locations come from the run config, by name."""
    bound: dict[str, Any] = {}
    generation = config.data_generation
    if generation is not None:
        source = generation.source_data.dataset
        bound["seed_data"] = SeedDataset(
            source_type=source.source_type,
            file_path=project_location(source.csv.file_path, project_path) if source.csv.file_path else None,
            hf_name=source.huggingface.name,
            hf_split=source.huggingface.split,
            hf_revision=source.huggingface.revision,
            credentials=credentials,
        )
        bound.update(dataset_folders(generation, credentials, project_path))
        if source.csv.train_file_path:
            train_file = project_location(source.csv.train_file_path, project_path)
            bound["label_only_train_data"] = SeedDataset(source_type="csv", file_path=train_file, credentials=credentials)
    training = config.training
    if training is not None and (training.dataset.local or training.dataset.pull_from_object_store):
        path = f"{training.dataset.local_path.rstrip('/')}/{training.dataset.name}" if training.dataset.local_path else training.dataset.name
        local = project_location(path, project_path)
        if training.dataset.pull_from_object_store:
            url = archive_url(str(training.dataset.object_store_bucket), str(training.dataset.object_store_blob), training.dataset.name)
            bound["training_dataset"] = ObjectStoreDatasetDict(url, local, credentials=credentials)
        else:
            bound["training_dataset"] = DatasetDictDataset(local, credentials=credentials)
    return bound


def dataset_folders(generation: DataGenerationConfig, credentials: dict[str, Any] | None, project_path: Path) -> dict[str, Any]:
    """Return the DatasetDict entries: synthesis output, the labelled (final) dataset, and the final folder for publishing.

    `output.local_path/output.dataset.repo_name` always holds the final dataset. With labelling
    on, synthesis writes to `<repo_name>-generated` and labelling writes the final folder (never
    reading and writing one folder); with it off, synthesis writes the final folder and
    `labelled_dataset` is the same data passed through in memory.
    """
    final = project_location(generation.dataset_path, project_path)
    labelled = DatasetDictDataset(final, credentials=credentials) if generation.labelling.enabled else MemoryDataset(copy_mode="assign")
    return {
        "generated_dataset": DatasetDictDataset(project_location(generation.generated_dataset_path, project_path), credentials=credentials),
        "labelled_dataset": labelled,
        "final_dataset": DatasetDictDataset(final, credentials=credentials),
    }


def hub_pushes(config: RunConfig, outputs: set[str]) -> list[str]:
    """Return what this pipeline would push to the Hub (by its outputs and the config switches)."""
    pushes = []
    generation, training = config.data_generation, config.training
    if DATASET_PUBLICATION in outputs and generation is not None and generation.output.push_to_hub:
        pushes.append("data_generation.output.push_to_hub")
    if MODEL_PUBLICATION in outputs and training is not None and training.output.push_to_hub:
        pushes.append("training.output.push_to_hub")
    return pushes


def llm_client_datasets(
    config: DataGenerationConfig, conf_catalog: dict[str, Any], credentials: dict[str, Any] | None, project_path: Path
) -> dict[str, LLMClientDataset]:
    """Return the generator, judge and embedding client entries, built from the parameters."""
    engine = config.generation.async_config
    common = {
        "max_concurrent_requests": engine.max_concurrent_requests,
        "request_timeout_seconds": engine.request_timeout_seconds,
        "max_retries": engine.max_retries,
        "adaptive_concurrency": engine.adaptive_concurrency,
    }

    def catalog_options(name: str) -> dict[str, Any]:
        options = {key: (conf_catalog.get(name) or {}).get(key) for key in CATALOG_CLIENT_OPTIONS}
        if options["cache_path"]:
            options["cache_path"] = project_location(options["cache_path"], project_path)
        return options

    llm = config.llm

    def chat_client(name: str, provider: str, model: str) -> LLMClientDataset:
        # the primary llm's address and API version only apply to its own provider
        same_provider = provider == llm.provider
        return LLMClientDataset(
            provider=provider,
            model=model,
            base_url=llm.base_url if same_provider else None,
            api_version=llm.api_version if same_provider else None,
            credentials=credentials,
            **common,
            **catalog_options(name),
        )

    local_embeddings = llm.embedding_model in LOCAL_EMBEDDING_MODELS
    return {
        "judge_llm": chat_client("judge_llm", config.judge_provider, config.judge_model),
        "generator_llm": chat_client("generator_llm", config.generator_provider, config.generator_model),
        "embedding_client": LLMClientDataset(
            provider="local" if local_embeddings else llm.provider,
            model=None if local_embeddings else llm.model,
            embedding_model=llm.embedding_model,
            base_url=None if local_embeddings else llm.base_url,
            api_version=None if local_embeddings else llm.api_version,
            credentials=None if local_embeddings else credentials,
            **common,
            **catalog_options("embedding_client"),
        ),
    }


def artifact_datasets(
    config: DataGenerationConfig, conf_catalog: dict[str, Any], credentials: dict[str, Any] | None, project_path: Path
) -> dict[str, AbstractDataset]:
    """Return the diagnostics artifact entries, moved to the folders the parameters name."""
    quality = config.data_quality_metrics
    artifacts = f"{config.output.local_path.rstrip('/')}/{quality.artifact_subdir}"
    locations = {name: f"{artifacts}/{file}" for name, file in ARTIFACT_FILES.items()}
    locations["drift_scores"] = f"{artifacts}/{quality.drift.output_filename}"
    locations["faiss_index"] = f"{quality.drift.index_dir.rstrip('/')}/{FAISS_INDEX_FILE}"
    bound = {}
    for name, location in locations.items():
        entry = dict(conf_catalog.get(name) or {})
        if not entry:
            continue
        entry["filepath"] = project_location(location, project_path)
        if "://" in location and credentials:
            entry["credentials"] = credentials
        bound[name] = AbstractDataset.from_config(name, entry)
    return bound


def judge_datasets(config: RunConfig, conf_catalog: dict[str, Any], project_path: Path) -> dict[str, AbstractDataset]:
    """Return the trained judge's entries, in the folder the training output parameters name."""
    folder = project_location(judge_output_dir(config), project_path)
    bound: dict[str, AbstractDataset] = {"judge_model": JudgeModelDataset(path=folder)}
    for name, file in JUDGE_FILES.items():
        entry = dict(conf_catalog.get(name) or {})
        if entry:
            entry["filepath"] = f"{folder}/{file}"
            bound[name] = AbstractDataset.from_config(name, entry)
    return bound
