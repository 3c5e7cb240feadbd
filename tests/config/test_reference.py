"""docs/configuration.md carries the field tables generated from the models, up to date."""

from pathlib import Path

from judgeforge.config.reference import field_rows, is_addition, leaf_fields, update_document
from judgeforge.config.run import RunConfig
from judgeforge.config.training import TrainingConfig

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_reference_is_up_to_date() -> None:
    text = DOCUMENT.read_text(encoding="utf-8")
    assert update_document(text) == text, "run: python -m judgeforge.config.reference"


def test_field_rows_reach_nested_leaves_with_defaults() -> None:
    rows = {
        path: (type_text, default)
        for path, type_text, default, _ in field_rows(TrainingConfig, "training")
    }
    assert rows["training.training.learning_rate_multiplier"] == ("float", "1.0")
    assert (
        rows["training.output.object_store_bucket"][1] == '"${LUNA_OBJECT_STORE_BUCKET:-luna-ft}"'
    )


def test_every_field_documents_itself_and_the_additions_are_marked() -> None:
    fields = leaf_fields(RunConfig, "")
    assert [path for path, field in fields if not (field.description or "").strip()] == []
    assert {path for path, field in fields if is_addition(field)} == {
        "dask_scheduler_address",
        "data_generation.source_data.max_text_chars",
        "data_generation.llm.base_url",
        "data_generation.llm.api_version",
        "data_generation.llm.temperature",
        "data_generation.llm.max_output_tokens",
        "data_generation.llm.local_workers",
        "data_generation.generation.async_config.request_timeout_seconds",
        "data_generation.generation.async_config.max_retries",
        "data_generation.generation.async_config.adaptive_concurrency",
        "data_generation.generation.async_config.retry_budget_seconds",
        "data_generation.generation.async_config.max_connection_failures",
        "data_generation.generation.async_config.requests_per_minute",
        "data_generation.generation.async_config.tokens_per_minute",
        "data_generation.generation.async_config.batch",
        "data_generation.generation.max_attempts_per_example",
        "data_generation.generation.max_shortfall_fraction",
        "data_generation.generation.context_token_budget",
        "data_generation.generation.shards",
        *(
            f"data_generation.generation.postprocessing.{leaf}"
            for leaf in (
                "cut_prefix",
                "cut_suffix",
                "regex",
                "strip_whitespace",
                "added_prefix",
                "added_suffix",
            )
        ),
        "data_generation.diversity.near_miss_share",
        "data_generation.output.sft_formats",
        "data_generation.output.sys_msg",
        "data_generation.labelling.judge_provider",
        "data_generation.labelling.judge_model",
        "data_generation.labelling.disagreement_policy",
        "data_generation.labelling.invalid_answer_retries",
        "data_generation.labelling.max_unlabelled_fraction",
        "training.training.validation_fraction",
        "training.training.early_stopping_patience",
        "training.training.cross_validation_below",
        "training.training.cross_validation_folds",
        "training.training.calibrate",
        "training.model.head",
        "training.model.encoder_name",
        "training.model.encoder_learning_rate",
        "training.model.int8_inference",
        *(
            f"data_generation.diversity.{leaf}"
            for leaf in (
                "sampled_attributes.id",
                "sampled_attributes.name",
                "sampled_attributes.description",
                "sampled_attributes.possible_values.id",
                "sampled_attributes.possible_values.name",
                "sampled_attributes.possible_values.description",
                "sampled_attributes.possible_values.sample_rate",
                "combination_sampling.combination",
                "combination_sampling.sample_rate",
                "personas.id",
                "personas.description",
                "personas_file",
                "languages.name",
                "languages.sample_rate",
                "prompt_template",
                "prompt_expansion.placeholders",
                "prompt_expansion.combinatorial",
                "prompt_expansion.num_random_samples",
                "generators.provider",
                "generators.model",
                "generators.weight",
                "generators.base_url",
                "topic_tree.degree",
                "topic_tree.depth",
                "topic_tree.topic_prompt",
                "topics",
                "input_documents.path",
                "input_documents.id",
                "input_documents.skip_unparseable",
                "input_documents.segmentation_params.id",
                "input_documents.segmentation_params.segmentation_strategy",
                "input_documents.segmentation_params.tokenizer",
                "input_documents.segmentation_params.segment_length",
                "input_documents.segmentation_params.segment_overlap",
            )
        ),
    }
