"""Validate the run config before any work and bind config-driven locations into the catalog."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from judgeforge.config import RunConfig, validate_run_config
from judgeforge.datasets import DatasetDictDataset, SeedDataset

log = logging.getLogger(__name__)

# Credentials entry read for object-store URLs (s3://, gs://) in config-driven paths.
OBJECT_STORE_CREDENTIALS = "object_store"


class RunConfigHook:
    """Fails a run with every config problem at once, then points datasets where the config says."""

    def __init__(self) -> None:
        self._config: RunConfig | None = None
        self._project_path = Path.cwd()

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Validate the merged parameters (base + env + runtime) before the catalog exists."""
        self._config = validate_run_config(context.config_loader["parameters"], source=f"parameters (env {context.env or 'local'})")
        self._project_path = Path(context.project_path)

    @hook_impl
    def after_catalog_created(self, catalog: Any, conf_creds: dict[str, Any]) -> None:
        """Replace the config-driven catalog entries with datasets built from the run config."""
        if self._config is None:
            return
        credentials = (conf_creds or {}).get(OBJECT_STORE_CREDENTIALS)
        for name, dataset in config_bound_datasets(self._config, credentials, self._project_path).items():
            catalog[name] = dataset


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
        bound["generated_dataset"] = DatasetDictDataset(project_location(generation.dataset_path, project_path), credentials=credentials)
    training = config.training
    if training is not None and training.dataset.local:
        path = f"{training.dataset.local_path.rstrip('/')}/{training.dataset.name}" if training.dataset.local_path else training.dataset.name
        bound["training_dataset"] = DatasetDictDataset(project_location(path, project_path), credentials=credentials)
    return bound
