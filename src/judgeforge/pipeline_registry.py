"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Order of the default chain: each stage reads what the one before it wrote.
DEFAULT_CHAIN = ("ingestion", "synthesis", "labelling", "diagnostics", "training")


def register_pipelines() -> dict[str, Pipeline]:
    """Return every pipeline by name, with `__default__` the whole chain."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum((pipelines[name] for name in DEFAULT_CHAIN if name in pipelines), Pipeline([]))
    return pipelines
