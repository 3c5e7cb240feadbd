"""The publishing pipeline: the final dataset + its reports → dataset card → pushes → publication receipt.

On its own it reads the final folder (`labelled_dataset`) and the labelling and diagnostics
reports when they exist; in a composition with data generation (judgeforge.pipeline_registry)
it reads what that composition writes, so Kedro runs it last.
"""

from kedro.pipeline import Node, Pipeline, pipeline

from judgeforge.pipelines.labelling.pipeline import metric_pipeline
from judgeforge.pipelines.publishing.nodes import publish_dataset, write_dataset_card


def create_pipeline(**kwargs) -> Pipeline:
    """Return final dataset + reports → dataset card → pushes (Hub, object store) → publication receipt."""
    return metric_pipeline() + pipeline(
        [
            Node(
                write_dataset_card,
                inputs=[
                    "labelled_dataset",
                    "resolved_metric",
                    "params:data_generation",
                    "card_labelling_report",
                    "card_diagnostics_summary",
                ],
                outputs="dataset_card",
                name="write_dataset_card",
            ),
            Node(
                publish_dataset,
                inputs=[
                    "labelled_dataset",
                    "dataset_card",
                    "params:data_generation.output",
                    "hub_client",
                    "object_store",
                ],
                outputs="dataset_publication",
                name="publish_dataset",
            ),
        ],
        namespace="publishing",
        prefix_datasets_with_namespace=False,
    )
