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
from judgeforge.pipelines.synthesis.shards import (
    SHARD_OUTPUTS,
    generate_shard,
    merge_shards,
    shard_namespace,
    split_generation_plan,
)

NAMESPACE = "synthesis"
COLUMNS = "params:data_generation.source_data.dataset.columns"
# What generation reads besides the plan: GenerationInputs' fields → the datasets the generation
# nodes pass them from, in that order.
GENERATION_DATASETS = {
    "enhancement": "enhancement_table",
    "holdout": "holdout_table",
    "metric": "resolved_metric",
    "llm": "params:data_generation.llm",
    "generation": "params:data_generation.generation",
    "diversity": "params:data_generation.diversity",
    "columns": COLUMNS,
    "sampling": "params:data_generation.source_data.sampling",
    "generator_llm": "generator_llm",
    "generator_pool": "generator_pool",
    "segments": "document_segments",
}
GENERATION_INPUTS = list(GENERATION_DATASETS.values())
GENERATION_OUTPUTS = [
    "synthetic_examples",
    "synthetic_rejects",
    "generation_stats",
    "generation_debug_log",
]
# Shared by every shard; the rest of a shard's inputs are its own (`synthesis.shard_<i>.generation_plan`,
# and its own clients `synthesis.shard_<i>.generator_llm` / `.generator_pool`, so each counts its usage).
SHARED_INPUTS = {"enhancement_table", "holdout_table", "resolved_metric", "document_segments"}


def generation_nodes(shards: int) -> list[Node | Pipeline]:
    """Return the nodes from the plan to the synthetic rows: one node, or split → `synthesis.shard_<i>` fragments → merge.

    These nodes carry the `synthesis` namespace themselves (`create_pipeline` wraps the others
    in it), so a shard's datasets can be `synthesis.shard_<i>.*`, named after its namespace.
    """
    if shards == 1:
        return [
            Node(
                generate_synthetic_examples,
                inputs=["generation_plan", "class_quotas", *GENERATION_INPUTS],
                outputs=GENERATION_OUTPUTS,
                name="generate_synthetic_examples",
                namespace=NAMESPACE,
            )
        ]
    fragment = Pipeline(
        [
            Node(
                generate_shard,
                inputs=["generation_plan", *GENERATION_INPUTS],
                outputs=list(SHARD_OUTPUTS),
                name="generate_shard",
            )
        ]
    )
    namespaces = [f"{NAMESPACE}.{shard_namespace(index)}" for index in range(1, shards + 1)]
    parameters = {name for name in GENERATION_INPUTS if name.startswith("params:")}
    return [
        Node(
            split_generation_plan,
            inputs=["generation_plan", "params:data_generation.generation"],
            outputs=[f"{namespace}.generation_plan" for namespace in namespaces],
            name="split_generation_plan",
            namespace=NAMESPACE,
        ),
        *(
            pipeline(fragment, namespace=namespace, inputs=SHARED_INPUTS, parameters=parameters)
            for namespace in namespaces
        ),
        Node(
            merge_shards,
            inputs=[
                "class_quotas",
                "generation_plan",
                *GENERATION_INPUTS,
                *(f"{namespace}.{name}" for namespace in namespaces for name in SHARD_OUTPUTS),
            ],
            outputs=GENERATION_OUTPUTS,
            name="merge_shards",
            namespace=NAMESPACE,
        ),
    ]


def create_pipeline(shards: int = 1, **kwargs) -> Pipeline:
    """Return holdout + enhancement + generator LLM → generation plan → synthetic rows → train/test DatasetDict + report.

    With `shards` > 1 (generation.shards) the plan is generated in that many namespaced
    shards and merged (`generation_nodes`).

    The report is written before `require_delivery`, which stops the run when synthesis fell
    short of total_examples beyond generation.max_shortfall_fraction.

    The metric comes from `resolved_metric`: the configured one, with whatever it leaves out
    derived from llmaj_source_prompt.
    """
    around_generation = pipeline(
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
        namespace=NAMESPACE,
        prefix_datasets_with_namespace=False,
    )
    return metric_pipeline() + Pipeline(generation_nodes(shards)) + around_generation
