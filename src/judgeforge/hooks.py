"""Validate the run config before any work and bind config-driven locations into the catalog."""

from __future__ import annotations

import logging
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

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Validate the merged parameters (base + env + runtime) before the catalog exists."""
        self._config = validate_run_config(context.config_loader["parameters"], source=f"parameters (env {context.env})")

    @hook_impl
    def after_catalog_created(self, catalog: Any, conf_creds: dict[str, Any]) -> None:
        """Replace the config-driven catalog entries with datasets built from the run config."""
        if self._config is None:
            return
        credentials = (conf_creds or {}).get(OBJECT_STORE_CREDENTIALS)
        for name, dataset in config_bound_datasets(self._config, credentials).items():
            catalog[name] = dataset


def config_bound_datasets(config: RunConfig, credentials: dict[str, Any] | None) -> dict[str, Any]:
    """Return the catalog entries whose locations come from the run config, by name."""
    bound: dict[str, Any] = {}
    generation = config.data_generation
    if generation is not None:
        source = generation.source_data.dataset
        bound["seed_data"] = SeedDataset(
            source_type=source.source_type,
            file_path=source.csv.file_path,
            hf_name=source.huggingface.name,
            hf_split=source.huggingface.split,
            hf_revision=source.huggingface.revision,
            credentials=credentials,
        )
        bound["generated_dataset"] = DatasetDictDataset(generation.dataset_path, credentials=credentials)
    training = config.training
    if training is not None and training.dataset.local:
        path = f"{training.dataset.local_path.rstrip('/')}/{training.dataset.name}" if training.dataset.local_path else training.dataset.name
        bound["training_dataset"] = DatasetDictDataset(path, credentials=credentials)
    return bound
