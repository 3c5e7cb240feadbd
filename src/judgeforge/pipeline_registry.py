"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline, pipeline

# Order of the default chain: each stage reads what the one before it wrote.
DEFAULT_CHAIN = ("ingestion", "synthesis", "labelling", "diagnostics", "training")


def register_pipelines() -> dict[str, Pipeline]:
    """Return every pipeline by name, with `__default__` the whole chain.

    On its own, `training` reads `training_dataset` (where training.dataset points); in the
    chain it trains on the DatasetDict that synthesis just wrote, so Kedro orders it last.
    """
    pipelines = find_pipelines(raise_errors=True)
    chain = [pipelines[name] for name in DEFAULT_CHAIN if name in pipelines and name != "training"]
    if "training" in pipelines:
        chain.append(pipeline(pipelines["training"], inputs={"training_dataset": "generated_dataset"}))
    pipelines["__default__"] = sum(chain, Pipeline([]))
    return pipelines
