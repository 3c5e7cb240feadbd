"""The SFT export pipeline: the final dataset → JSON lines in each requested format."""

from kedro.pipeline import Node, Pipeline, pipeline

from judgeforge.pipelines.labelling.pipeline import metric_pipeline
from judgeforge.pipelines.sft_export.nodes import export_sft_formats


def create_pipeline(**kwargs) -> Pipeline:
    """Return final dataset + metric + output.sft_formats + training prompt → `sft_exports` (one file per format and split).

    On its own it reads the final folder (`labelled_dataset`); in a composition with data
    generation (judgeforge.pipeline_registry) it reads what that composition writes. Like
    the report, it is no stage box of its own in kedro-viz.
    """
    return metric_pipeline() + pipeline(
        [
            Node(
                export_sft_formats,
                inputs=[
                    "labelled_dataset",
                    "resolved_metric",
                    "params:data_generation.output",
                    "params:training",
                ],
                outputs="sft_exports",
                name="export_sft_formats",
            ),
        ]
    )
