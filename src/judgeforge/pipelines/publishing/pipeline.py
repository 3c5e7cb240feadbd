"""The publishing pipeline: run after data generation (the SDK runs it as its own stage), never in `__default__`.

It reads `final_dataset` (the folder `output.local_path/output.dataset.repo_name`) and the
labelling and diagnostics reports when they exist, so it must run after the pipelines that
write them, not in the same Kedro run.
"""

from kedro.pipeline import Node, Pipeline

from judgeforge.pipelines.labelling.pipeline import metric_pipeline
from judgeforge.publishing.nodes import publish_dataset, write_dataset_card


def create_pipeline(**kwargs) -> Pipeline:
    """Return final dataset + reports → dataset card → pushes (Hub, object store) → publication receipt."""
    return metric_pipeline() + Pipeline(
        [
            Node(
                write_dataset_card,
                inputs=["final_dataset", "resolved_metric", "params:data_generation", "card_labelling_report", "card_diagnostics_summary"],
                outputs="dataset_card",
                name="write_dataset_card",
            ),
            Node(
                publish_dataset,
                inputs=["final_dataset", "dataset_card", "params:data_generation.output", "hub_client", "object_store"],
                outputs="dataset_publication",
                name="publish_dataset",
            ),
        ]
    )
