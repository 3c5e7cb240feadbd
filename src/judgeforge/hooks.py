"""Check, before any node runs, that a run which pushes to the Hub has a token."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from judgeforge.config import RunConfig
from judgeforge.publishing.hub import HubError, hub_token, missing_token_message

HUB_CREDENTIALS = "hub"
# Outputs whose node pushes to the Hub, and the config switch that makes it push.
DATASET_PUBLICATION = "dataset_publication"
MODEL_PUBLICATION = "model_publication"


class RunConfigHook:
    """Fails a run that pushes to the Hub without a token before any node runs.

    The run config itself is validated by the project's config loader (judgeforge.config_loader),
    when the context reads the parameters.
    """

    def __init__(self) -> None:
        self._config: RunConfig | None = None
        self._hub_credentials: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        """Keep the validated run config of this context for the pre-flight check."""
        self._config = context.config_loader.run_config

    @hook_impl
    def after_catalog_created(self, conf_creds: dict[str, Any]) -> None:
        """Keep the Hub credentials entry for the pre-flight check."""
        self._hub_credentials = (conf_creds or {}).get(HUB_CREDENTIALS) or {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Fail before any node runs when the pipeline will push to the Hub and there is no token."""
        if self._config is None or hub_token(self._hub_credentials):
            return
        pushes = hub_pushes(self._config, pipeline.all_outputs())
        if pushes:
            raise HubError(missing_token_message(" and ".join(pushes)))


def hub_pushes(config: RunConfig, outputs: set[str]) -> list[str]:
    """Return what this pipeline would push to the Hub (by its outputs and the config switches)."""
    pushes = []
    generation, training = config.data_generation, config.training
    if DATASET_PUBLICATION in outputs and generation is not None and generation.output.push_to_hub:
        pushes.append("data_generation.output.push_to_hub")
    if MODEL_PUBLICATION in outputs and training is not None and training.output.push_to_hub:
        pushes.append("training.output.push_to_hub")
    return pushes
