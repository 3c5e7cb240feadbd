"""The synthesis pipeline."""

from kedro.pipeline import Node, Pipeline, pipeline

from judgeforge.pipelines.labelling.pipeline import metric_pipeline
from judgeforge.pipelines.synthesis.grounding import grow_topic_tree, segment_documents
from judgeforge.pipelines.synthesis.nodes import (
    assemble_train_and_test,
    build_generation_report,
    generate_synthetic_examples,
    plan_class_quotas,
    require_delivery,
)
from judgeforge.pipelines.synthesis.plan import build_generation_plan

COLUMNS = "params:data_generation.source_data.dataset.columns"


def create_pipeline(**kwargs) -> Pipeline:
    """Return holdout + enhancement + generator LLM → generation plan → synthetic rows → train/test DatasetDict + report.

    The report is written before `require_delivery`, which stops the run when synthesis fell
    short of total_examples beyond generation.max_shortfall_fraction.

    The metric comes from `resolved_metric`: the configured one, with whatever it leaves out
    derived from llmaj_source_prompt.
    """
    return metric_pipeline() + pipeline(
        [
            Node(
                plan_class_quotas,
                inputs=[
                    "holdout_table",
                    "resolved_metric",
                    "params:data_generation.generation",
                    COLUMNS,
                ],
                outputs="class_quotas",
                name="plan_class_quotas",
            ),
            Node(
                segment_documents,
                inputs=["input_documents", "params:data_generation.diversity"],
                outputs="document_segments",
                name="segment_documents",
            ),
            # after the segments: a document that cannot be parsed stops the run before any call
            Node(
                grow_topic_tree,
                inputs=[
                    "saved_topic_tree",
                    "enhancement_table",
                    "resolved_metric",
                    "params:data_generation.llm",
                    "params:data_generation.diversity",
                    COLUMNS,
                    "document_segments",
                    "generator_llm",
                ],
                outputs="topic_tree",
                name="grow_topic_tree",
            ),
            Node(
                build_generation_plan,
                inputs=[
                    "class_quotas",
                    "enhancement_table",
                    "resolved_metric",
                    "params:data_generation.llm",
                    "params:data_generation.generation",
                    "params:data_generation.diversity",
                    COLUMNS,
                    "params:data_generation.source_data.sampling",
                    "topic_tree",
                    "document_segments",
                ],
                outputs="generation_plan",
                name="build_generation_plan",
            ),
            Node(
                generate_synthetic_examples,
                inputs=[
                    "generation_plan",
                    "class_quotas",
                    "enhancement_table",
                    "holdout_table",
                    "resolved_metric",
                    "params:data_generation.llm",
                    "params:data_generation.generation",
                    "params:data_generation.diversity",
                    COLUMNS,
                    "params:data_generation.source_data.sampling",
                    "generator_llm",
                    "generator_pool",
                    "document_segments",
                ],
                outputs=[
                    "synthetic_examples",
                    "synthetic_rejects",
                    "generation_stats",
                    "generation_debug_log",
                ],
                name="generate_synthetic_examples",
            ),
            Node(
                require_delivery,
                inputs=["synthetic_examples", "generation_report"],
                outputs="delivered_synthetic_examples",
                name="require_delivery",
            ),
            Node(
                assemble_train_and_test,
                inputs=[
                    "delivered_synthetic_examples",
                    "enhancement_table",
                    "holdout_table",
                    COLUMNS,
                    "params:data_generation.source_data.sampling",
                    "params:data_generation.output",
                ],
                outputs=["train_table", "generated_dataset"],
                name="assemble_train_and_test",
            ),
            Node(
                build_generation_report,
                inputs=[
                    "class_quotas",
                    "synthetic_examples",
                    "synthetic_rejects",
                    "generation_stats",
                    COLUMNS,
                ],
                outputs="generation_report",
                name="report_generation",
            ),
        ],
        namespace="synthesis",
        prefix_datasets_with_namespace=False,
    )
