"""Formatting rows into judge examples and the checks that run before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from judgeforge.config.training import ModelConfig, TrainingConfig, TrainingMetricConfig
from judgeforge.models.embedded import embedded_model_dir
from judgeforge.pipelines.training.nodes import format_judge_examples
from judgeforge.training.formatting import (
    AnswerSpace,
    ChatPrompt,
    LabelValueError,
    TemplateColumnError,
    prompts_token_ids,
    training_record,
)
from judgeforge.training.loading import ModelLoadError, base_model_source, load_tokenizer
from judgeforge.training.scoring import AnswerTokenError, answer_token_ids
from judgeforge.training.trainer import optimizer_steps, scheduler_kwargs
from tests.support.tiny_judge import separable_dataset, tiny_judge_config


def config(**sections: dict) -> TrainingConfig:
    return TrainingConfig.model_validate(tiny_judge_config("unused-model", **sections))


@pytest.mark.parametrize(
    ("value", "answer"),
    [
        ("1", "true"),
        (1, "true"),
        (1.0, "true"),
        ("Yes", "true"),
        (True, "true"),
        ("0", "false"),
        ("no", "false"),
        (False, "false"),
    ],
)
def test_boolean_labels_map_to_true_and_false(value: object, answer: str) -> None:
    assert AnswerSpace.from_metric(TrainingMetricConfig(type="boolean")).answer_for(value) == answer


def test_a_label_that_is_not_boolean_is_named() -> None:
    with pytest.raises(LabelValueError, match="'maybe' is not boolean"):
        AnswerSpace.from_metric(TrainingMetricConfig(type="boolean")).answer_for("maybe")


def test_multi_class_targets_are_class_indices_as_text() -> None:
    space = AnswerSpace.from_metric(
        TrainingMetricConfig(type="multi_class", classes=["billing", "Shipping", "3"])
    )
    assert [space.answer_for(value) for value in ("billing", "shipping", 3, 3.0)] == [
        "0",
        "1",
        "2",
        "2",
    ]
    assert space.label_for_answer("1") == "Shipping"
    with pytest.raises(
        LabelValueError,
        match=r"'refund' is not one of metric.classes \['billing', 'Shipping', '3'\]",
    ):
        space.answer_for("refund")


def test_examples_carry_prompt_label_answer_and_provenance() -> None:
    train, test = format_judge_examples(
        separable_dataset(4, 2), config(prompt_template="Says: {text}")
    )
    assert list(train.columns) == ["row_id", "source", "text", "prompt", "label", "answer"]
    assert train["prompt"][0].startswith("Says: good good")
    assert list(train["answer"]) == ["true", "false", "true", "false"] and len(test) == 2


def test_a_template_column_missing_from_the_data_is_named() -> None:
    with pytest.raises(
        TemplateColumnError,
        match=r"prompt_template uses \{question\}, \{context\}, which split 'train' lacks",
    ):
        format_judge_examples(
            separable_dataset(4, 2), config(prompt_template="{question} {text} {context}")
        )


@pytest.mark.parametrize(
    ("dataset_section", "message"),
    [
        (
            {"split": "training"},
            r"dataset.split 'training' is not a split of training_dataset \(it has: train, test\)",
        ),
        (
            {"test_label_column": "gold"},
            r"dataset.test_label_column 'gold' is not a column of split 'test'",
        ),
    ],
)
def test_missing_splits_and_label_columns_are_named(dataset_section: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        format_judge_examples(separable_dataset(4, 2), config(dataset=dataset_section))


def test_training_records_use_chat_messages_or_plain_text() -> None:
    assert training_record("Q?", "true", chat=ChatPrompt("Answer true or false.")) == {
        "prompt": [
            {"role": "system", "content": "Answer true or false."},
            {"role": "user", "content": "Q?"},
        ],
        "completion": [{"role": "assistant", "content": "true"}],
    }
    assert training_record("Q?", "0", chat=None) == {"prompt": "Q?\n", "completion": "0"}


def test_the_judges_system_message_names_the_answers() -> None:
    assert AnswerSpace.from_metric(config().metric).instruction == "Answer true or false."
    multi = TrainingMetricConfig(type="multi_class", classes=["billing", "shipping", "returns"])
    assert AnswerSpace.from_metric(multi).instruction == "Answer 0, 1 or 2."


def test_the_judges_system_message_replaces_the_chat_templates_default_one() -> None:
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    prompt = "Is the following movie review positive?\nReview: a witty, seductive movie.\nAnswer true or false."
    default = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        tokenize=True,
        return_dict=True,
        add_generation_prompt=True,
    )["input_ids"]
    ids = prompts_token_ids(tokenizer, [prompt], ChatPrompt("Answer true or false."))[0]
    text = tokenizer.decode(ids)
    assert "SmolLM" in tokenizer.decode(default) and "SmolLM" not in text
    assert text.startswith(
        "<|im_start|>system\nAnswer true or false.<|im_end|>\n<|im_start|>user\n"
    )
    assert len(ids) <= len(default) - 10


@pytest.mark.parametrize("chat", [ChatPrompt("Answer true or false."), None])
def test_answers_start_with_distinct_single_tokens(chat: ChatPrompt | None) -> None:
    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    assert len(set(answer_token_ids(tokenizer, ["false", "true"], chat))) == 2
    assert len(set(answer_token_ids(tokenizer, [str(i) for i in range(10)], chat))) == 10
    with pytest.raises(AnswerTokenError, match=r"answers \['1', '10'\] start with the same token"):
        answer_token_ids(tokenizer, [str(i) for i in range(11)], chat)


def test_model_sources(tmp_path: Path) -> None:
    assert base_model_source(ModelConfig(name="SmolLM2-135M-Instruct")) == str(embedded_model_dir())
    assert base_model_source(ModelConfig(name="org/some-model")) == "org/some-model"
    (tmp_path / "org" / "some-model").mkdir(parents=True)
    (tmp_path / "org" / "some-model" / "config.json").write_text("{}")
    assert base_model_source(
        ModelConfig(name="org/some-model", model_local_path=str(tmp_path))
    ) == str(tmp_path / "org" / "some-model")
    with pytest.raises(ModelLoadError, match="model.model_local_path .* holds no model"):
        base_model_source(ModelConfig(name="other", model_local_path=str(tmp_path)))


def test_an_unreachable_hub_model_fails_in_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        ModelLoadError, match="cannot load the tokenizer 'judgeforge-test/no-such-model'"
    ) as error:
        load_tokenizer("judgeforge-test/no-such-model", use_unsloth_tokenizer=False)
    assert "\n" not in str(error.value)


def test_schedulers_that_need_arguments_get_them() -> None:
    assert (
        optimizer_steps(
            50,
            config().training.model_copy(
                update={"per_device_train_batch_size": 8, "gradient_accumulation_steps": 2}
            ),
        )
        == 16
    )
    assert scheduler_kwargs("cosine_with_min_lr", 16) == {"min_lr_rate": 0.1}
    assert scheduler_kwargs("warmup_stable_decay", 16) == {"num_decay_steps": 2}
    assert scheduler_kwargs("linear", 16) == {}
