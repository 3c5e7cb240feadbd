"""Project pipelines."""

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline, pipeline

# Order of the default chain: each stage reads what the one before it wrote.
DEFAULT_CHAIN = ("ingestion", "synthesis", "labelling", "diagnostics", "training")


def register_pipelines() -> dict[str, Pipeline]:
    """Return every pipeline by name, with `__default__` the whole chain.

    On its own, `training` reads `training_dataset` (where training.dataset points); in the
    chain it trains on `labelled_dataset` (the synthesis output after the judge, or passed
    through when labelling is off), so Kedro orders it last. `label_only` and `publishing` run
    on their own (the SDK runs publishing as a stage after data generation).
    """
    pipelines = find_pipelines(raise_errors=True)
    chain = [pipelines[name] for name in DEFAULT_CHAIN if name in pipelines and name != "training"]
    if "training" in pipelines:
        chain.append(pipeline(pipelines["training"], inputs={"training_dataset": "labelled_dataset"}))
    pipelines["__default__"] = sum(chain, Pipeline([]))
    return pipelines
