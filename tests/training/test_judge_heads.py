"""The classify and encoder heads, head auto, validation on real rows, calibration, baselines, truncation."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import Dataset, DatasetDict

from judgeforge.config.training import TrainingConfig
from judgeforge.pipelines.training import nodes
from judgeforge.training import Judge
from judgeforge.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    probabilities_at,
)
from judgeforge.training.formatting import field_allowances
from judgeforge.training.judge import probability_column
from judgeforge.training.selection import better
from tests.support.busy_cores import every_core_busy
from tests.support.tiny_judge import SEPARABLE_TEXTS, separable_split, tiny_judge_config

GOOD, BAD, _ = SEPARABLE_TEXTS


def seeded_dataset(train_rows: int = 32, test_rows: int = 16, seed_rows: int = 16) -> DatasetDict:
    """The separable task with the first `seed_rows` train rows real ("seed") and ids unique across splits."""
    train = separable_split(train_rows).to_pandas()
    train["source"] = ["seed" if i < seed_rows else "synthetic" for i in range(train_rows)]
    train["row_id"] = [f"{source}-{i}" for i, source in enumerate(train["source"])]
    test = separable_split(test_rows).to_pandas().assign(source="seed")
    test["row_id"] = [f"holdout-{i}" for i in range(test_rows)]
    return DatasetDict({"train": Dataset.from_pandas(train), "test": Dataset.from_pandas(test)})


def head_config(tiny_llama_dir: Path, tiny_bert_dir: Path, head: str, **training) -> TrainingConfig:
    return TrainingConfig.model_validate(
        tiny_judge_config(
            tiny_llama_dir,
            model={"head": head, "encoder_name": str(tiny_bert_dir), "encoder_learning_rate": 5e-3},
            training=training,
        )
    )


@pytest.fixture(scope="module", params=["classify", "encoder"])
def head_run(request, tiny_llama_dir: Path, tiny_bert_dir: Path) -> dict:
    """One training run per classification head, shared by the tests that read its results."""
    # Held-out validation (3 of the 16 seed rows), not k-fold: cross-validation has its own test.
    config = head_config(tiny_llama_dir, tiny_bert_dir, request.param, cross_validation_below=0)
    train, test = nodes.format_judge_examples(seeded_dataset(), config)
    fit, validation = nodes.split_validation(train, config)
    judge, log = nodes.train_judge(fit, validation, config)
    return {"head": request.param, "judge": judge, "log": log, "train": train, "test": test}


@pytest.mark.parametrize("head", ["generate", "classify", "encoder"])
def test_the_training_seed_fixes_the_judge_whatever_the_process_drew_before(
    head: str, tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    # the new head and LoRA matrices come from torch's global generator, which the Trainer
    # seeds only after the model exists: a run must not depend on what ran before it
    config = head_config(
        tiny_llama_dir, tiny_bert_dir, head, num_train_epochs=1, cross_validation_below=0
    )
    train, test = nodes.format_judge_examples(seeded_dataset(), config)
    fit, validation = nodes.split_validation(train, config)
    scores = []
    for draws_before in (1, 1000):
        torch.rand(draws_before)
        judge, _ = nodes.train_judge(fit, validation, config)
        scores.append(judge.predict(test))
    pd.testing.assert_frame_equal(scores[0], scores[1])


def test_classification_heads_learn_and_give_probabilities_that_sum_to_one(head_run: dict) -> None:
    judge = head_run["judge"]
    assert judge.head == head_run["head"] == head_run["log"]["head"]
    predictions, scoring = nodes.score_with_judge(judge, head_run["test"])
    assert predictions["correct"].mean() > 0.75
    probabilities = predictions[[probability_column("false"), probability_column("true")]]
    np.testing.assert_allclose(probabilities.to_numpy().sum(axis=1), 1.0, atol=1e-6)
    assert scoring["rows"] == 16 and scoring["truncated_rows"] == 0


def test_classification_heads_reload_with_identical_predictions(
    head_run: dict, tmp_path: Path
) -> None:
    rows = pd.DataFrame({"text": [GOOD, BAD, "good bad good"]})
    before = head_run["judge"].predict(rows)
    head_run["judge"].save(tmp_path)
    # the same float arithmetic as the trained judge (an encoder judge loads in int8 by default;
    # int8 round trips: test_judge_fast_scoring.py)
    reloaded = Judge.load(tmp_path, int8=False)
    assert reloaded.head == head_run["head"]
    pd.testing.assert_frame_equal(before, reloaded.predict(rows), atol=1e-5)


def test_validation_rows_are_real_train_rows_never_test_rows(head_run: dict) -> None:
    validation = head_run["log"]["validation"]
    seed_train_ids = set(head_run["train"].loc[head_run["train"]["source"] == "seed", "row_id"])
    assert validation["rows"] == len(validation["row_ids"]) > 0
    assert set(validation["row_ids"]) <= seed_train_ids
    assert not set(validation["row_ids"]) & set(head_run["test"]["row_id"])
    assert head_run["log"]["summary"]["train_examples"] == 32 - validation["rows"]
    entry = head_run["log"]["candidates"][head_run["head"]]
    assert [e["epoch"] for e in entry["epochs"]] == list(range(1, len(entry["epochs"]) + 1))
    assert entry["validation"] in entry["epochs"]
    assert not any(better(epoch, entry["validation"]) for epoch in entry["epochs"])


def test_early_stopping_ends_training_after_patience_epochs_without_gain(
    tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    # A learning rate of ~0 cannot improve the validation score after the first epoch.
    config = head_config(
        tiny_llama_dir,
        tiny_bert_dir,
        "encoder",
        num_train_epochs=6,
        early_stopping_patience=1,
        cross_validation_below=0,
    ).model_copy(deep=True)
    config.model.encoder_learning_rate = 1e-12
    train, _ = nodes.format_judge_examples(seeded_dataset(), config)
    _, log = nodes.train_judge(*nodes.split_validation(train, config), config)
    assert len(log["candidates"]["encoder"]["epochs"]) == 2
    assert log["summary"]["epochs_run"] == 2


def test_head_auto_trains_every_head_and_keeps_the_best_on_validation(
    tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    config = head_config(tiny_llama_dir, tiny_bert_dir, "auto", num_train_epochs=1)
    train, _ = nodes.format_judge_examples(seeded_dataset(16, 4, 10), config)
    judge, log = nodes.train_judge(*nodes.split_validation(train, config), config)
    assert set(log["candidates"]) == {"generate", "classify", "encoder"}
    best = max(
        log["candidates"].values(),
        key=lambda e: (e["validation"]["macro_f1"], -e["validation"]["log_loss"]),
    )
    assert judge.head == log["head"] == best["head"]


def test_temperature_scaling_reduces_ece_of_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, size=(4000, 3))
    truth = np.array([rng.choice(3, p=p) for p in probabilities_at(true_logits)])
    overconfident = 3.0 * true_logits  # the model's logits: right ranking, three times too sharp
    validation, test = slice(0, 2000), slice(2000, None)
    temperature = fit_temperature(overconfident[validation], truth[validation])
    assert 2.5 < temperature < 3.5
    before = expected_calibration_error(probabilities_at(overconfident[test]), truth[test])
    after = expected_calibration_error(
        probabilities_at(overconfident[test], temperature), truth[test]
    )
    assert after < before / 2


def test_calibration_is_applied_with_enough_validation_rows_and_said_so(
    tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    config = head_config(
        tiny_llama_dir, tiny_bert_dir, "encoder", validation_fraction=0.5, cross_validation_below=0
    )
    train, test = nodes.format_judge_examples(seeded_dataset(32, 8, 24), config)
    judge, log = nodes.train_judge(*nodes.split_validation(train, config), config)
    calibration = log["calibration"]
    assert calibration["applied"] and calibration["validation_rows"] == 12
    assert judge.temperature == calibration["temperature"] != 1.0
    assert calibration["validation_log_loss_after"] <= calibration["validation_log_loss_before"]
    metrics, _, _, _ = nodes.summarise_evaluation(*_scored(judge, train, test, config), log, config)
    card = nodes.write_model_card(metrics, log, config)
    assert "Temperature scaling **applied**" in card
    assert {"test_ece", "test_ece_before_temperature"} <= metrics["calibration"].keys()


def _scored(judge: Judge, train: pd.DataFrame, test: pd.DataFrame, config: TrainingConfig):
    fine_tuned, scoring = nodes.score_with_judge(judge, test)
    base = nodes.score_with_base_model(test, config)
    baselines, report = nodes.score_with_baselines(train, test, config)
    return fine_tuned, base, baselines, report, scoring


def test_baselines_train_on_seed_rows_alone_and_on_the_whole_train_split(
    head_run: dict,
) -> None:
    config = head_run["judge"].config
    baselines, report = nodes.score_with_baselines(head_run["train"], head_run["test"], config)
    assert report == {
        "minilm_lr_seed_rows": {"train_rows": 16},
        "minilm_lr_train_split": {"train_rows": 32},
    }
    assert baselines.groupby("model").size().to_dict() == {
        "minilm_lr_seed_rows": 16,
        "minilm_lr_train_split": 16,
    }
    assert list(baselines["row_id"][:16]) == list(head_run["test"]["row_id"])


def test_a_judge_that_does_not_beat_the_seed_baseline_is_called_out(
    head_run: dict, caplog: pytest.LogCaptureFixture
) -> None:
    config = head_run["judge"].config
    fine_tuned, base, baselines, report, scoring = _scored(
        head_run["judge"], head_run["train"], head_run["test"], config
    )
    wrong = fine_tuned.assign(prediction=np.where(fine_tuned["label"] == "true", "false", "true"))
    with caplog.at_level(logging.WARNING, logger="judgeforge.pipelines.training.nodes"):
        metrics, _, _, _ = nodes.summarise_evaluation(
            wrong, base, baselines, report, scoring, head_run["log"], config
        )
    assert metrics["beats_seed_rows_baseline"] is False
    assert metrics["lift_over"]["minilm_lr_seed_rows"]["macro_f1"] < 0
    assert any(
        "does not beat the baseline trained on the real seed rows alone" in r.getMessage()
        for r in caplog.records
    )
    assert "does not beat the baseline trained on the real seed rows alone" in (
        nodes.write_model_card(metrics, head_run["log"], config)
    )


def test_field_allowances_cut_context_first_then_give_each_field_its_share() -> None:
    assert field_allowances({"query": 10, "context": 500, "response": 40}, 100) == {
        "query": 10,
        "context": 50,
        "response": 40,
    }
    assert field_allowances({"a": 10, "b": 300, "c": 300}, 100) == {"a": 10, "b": 45, "c": 45}
    assert field_allowances({"a": 10, "b": 20}, 100) == {"a": 10, "b": 20}


RAG_TEMPLATE = "Query: {query}\nContext: {context}\nResponse: {response}\nFaithful?"
RAG_RESPONSE = "the refund was paid on monday to the card used for the order"
RAG_ROWS = pd.DataFrame(
    {
        "query": ["when was the refund paid", "short"],
        "context": [" ".join(["the shop sells shoes and bags"] * 60), "tiny context"],
        "response": [RAG_RESPONSE, "short answer"],
    }
)


def rag_judge(tiny_llama_dir: Path, tiny_bert_dir: Path, head: str, max_seq_length: int) -> Judge:
    """An untrained judge of `head` on the rag template, rows cut to `max_seq_length` tokens."""
    from judgeforge.training.runtime import resolve_runtime_options

    raw = tiny_judge_config(
        tiny_llama_dir,
        prompt_template=RAG_TEMPLATE,
        training={"max_seq_length": max_seq_length},
        model={"head": head, "encoder_name": str(tiny_bert_dir)},
    )
    config = TrainingConfig.model_validate(raw)
    return Judge.trainable(config, resolve_runtime_options(config.training, config.model), head)


@pytest.mark.parametrize("head", ["generate", "classify"])
def test_truncation_keeps_a_rag_rows_query_and_response_whole(
    head: str, tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    judge = rag_judge(tiny_llama_dir, tiny_bert_dir, head, max_seq_length=96)
    response, rows = RAG_RESPONSE, RAG_ROWS
    prompts, truncated = judge.render(rows)
    assert truncated == 1
    assert "Query: when was the refund paid\n" in prompts[0]
    assert f"Response: {response}\n" in prompts[0]
    assert prompts[0].count("shoes") < 60
    assert all(len(judge.prompt_ids(p)) <= 96 for p in prompts)
    assert prompts[1] == "Query: short\nContext: tiny context\nResponse: short answer\nFaithful?"


def test_the_encoder_reads_a_rag_rows_fields_by_name_and_cuts_the_context_first(
    tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    judge = rag_judge(tiny_llama_dir, tiny_bert_dir, "encoder", max_seq_length=64)
    assert (
        judge.input_template == "query: {query} [SEP] context: {context} [SEP] response: {response}"
    )
    inputs, truncated = judge.render(RAG_ROWS)
    assert truncated == 1
    assert inputs[1] == "query: short [SEP] context: tiny context [SEP] response: short answer"
    assert inputs[0].startswith("query: when was the refund paid [SEP] context: the shop sells")
    assert inputs[0].endswith(f" [SEP] response: {RAG_RESPONSE}")
    assert "Faithful" not in inputs[0] and inputs[0].count("shoes") < 60
    # What the encoder tokenizes: [CLS], the fields with [SEP] between them, [SEP]; within 64.
    ids = judge.prompt_ids(inputs[0])
    assert len(ids) == 64
    words = judge.tokenizer.decode(ids)
    assert words.startswith("[CLS] query : when was the refund paid [SEP] context : the shop")
    assert words.endswith(f"[SEP] response : {RAG_RESPONSE} [SEP]")
    assert judge.tokenizer.convert_ids_to_tokens(ids).count("[SEP]") == 3


def test_the_encoder_reads_a_single_text_column_bare_and_each_field_of_a_tuple_its_share(
    tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    from judgeforge.training.runtime import resolve_runtime_options

    def encoder_judge(template: str, max_seq_length: int = 256) -> Judge:
        raw = tiny_judge_config(
            tiny_llama_dir,
            prompt_template=template,
            training={"max_seq_length": max_seq_length},
            model={"head": "encoder", "encoder_name": str(tiny_bert_dir)},
        )
        config = TrainingConfig.model_validate(raw)
        options = resolve_runtime_options(config.training, config.model)
        return Judge.trainable(config, options, "encoder")

    judge = encoder_judge("Is this review positive?\nReview: {text}\nAnswer true or false.")
    assert judge.input_template == "{text}"
    inputs, truncated = judge.render(pd.DataFrame({"text": [GOOD]}))
    assert (inputs, truncated) == ([GOOD], 0)
    assert judge.prompt_ids(inputs[0]) == judge.tokenizer(text=GOOD)["input_ids"]

    # tuple: two long fields share what is left of 40 tokens equally, the short one stays whole.
    judge = encoder_judge("Claim: {claim}\nEvidence: {evidence}\nOrigin: {origin}", 40)
    long = " ".join(["word"] * 50)
    inputs, truncated = judge.render(
        pd.DataFrame({"claim": [long], "evidence": [long], "origin": ["news"]})
    )
    assert truncated == 1 and inputs[0].endswith(" [SEP] origin: news")
    claim, evidence = (part.split(": ", 1)[1] for part in inputs[0].split(" [SEP] ")[:2])
    assert len(judge.prompt_ids(inputs[0])) <= 40
    assert abs(len(claim.split()) - len(evidence.split())) <= 1 and len(claim.split()) >= 10


def test_cpu_threads_follow_free_cores_unless_omp_num_threads_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    import psutil
    import torch

    from judgeforge.training.runtime import use_free_cores

    cores = len(os.sched_getaffinity(0))
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(psutil, "cpu_count", lambda: cores)
        monkeypatch.setattr(psutil, "cpu_percent", lambda interval: 100.0)
        assert use_free_cores() == torch.get_num_threads() == 1
        # the load average is not read: after a minute of 2-thread work it said "1 core busy"
        monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
        monkeypatch.setattr(psutil, "cpu_percent", lambda interval: 2.0)
        assert use_free_cores() == cores
        torch.set_num_threads(1)
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert use_free_cores() == 1
    finally:
        torch.set_num_threads(before)


def test_cpu_threads_drop_to_one_while_other_processes_keep_every_core_busy() -> None:
    import torch

    from judgeforge.training.runtime import use_free_cores

    before = torch.get_num_threads()
    try:
        with every_core_busy():
            assert use_free_cores() == 1
    finally:
        torch.set_num_threads(before)


def test_validation_comes_from_seed_rows_else_from_all_train_rows_else_none() -> None:
    from judgeforge.training.selection import validation_split

    rows = pd.DataFrame(
        {
            "row_id": [str(i) for i in range(10)],
            "source": ["seed"] * 4 + ["synthetic"] * 6,
            "label": ["true", "false"] * 5,
        }
    )
    fit, validation, origin = validation_split(rows, "label", 0.5, seed=0)
    assert origin == "real seed rows" and len(validation) == 2
    assert set(validation["source"]) == {"seed"} and set(validation["label"]) == {"true", "false"}
    assert sorted(fit["row_id"].tolist() + validation["row_id"].tolist()) == sorted(rows["row_id"])
    _, validation, origin = validation_split(rows.assign(source="synthetic"), "label", 0.2, seed=0)
    assert origin.startswith("train rows") and len(validation) == 2
    _, validation, origin = validation_split(rows.iloc[:3].assign(source="seed"), "label", 0.9, 0)
    assert len(validation) == 2
    fit, validation, origin = validation_split(rows.iloc[:1], "label", 0.2, seed=0)
    assert validation.empty and len(fit) == 1 and origin.startswith("none")


def test_encoder_head_mean_pools_real_tokens_so_padding_changes_nothing(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from judgeforge.training.encoder import HEAD_FILE, MeanPooledClassifier
    from judgeforge.training.loading import ModelLoadError
    from judgeforge.training.runtime import resolve_runtime_options

    config = head_config(tiny_llama_dir, tiny_bert_dir, "encoder")
    judge = Judge.trainable(
        config, resolve_runtime_options(config.training, config.model), "encoder"
    )
    assert isinstance(judge.model, MeanPooledClassifier)
    torch = pytest.importorskip("torch")
    torch.nn.init.normal_(judge.model.head.weight)  # a zero head would score every row alike
    short, long = judge.prompt_ids("good"), judge.prompt_ids(" ".join(["bad"] * 40))
    alone = judge.model(input_ids=torch.tensor([short])).logits
    padded = torch.tensor([short + [judge.tokenizer.pad_token_id] * (len(long) - len(short)), long])
    mask = torch.tensor([[1] * len(short) + [0] * (len(long) - len(short)), [1] * len(long)])
    batched = judge.model(input_ids=padded, attention_mask=mask).logits
    torch.testing.assert_close(batched[0], alone[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(batched[0], batched[1])

    judge.save(tmp_path)
    assert (tmp_path / HEAD_FILE).is_file()
    rows = pd.DataFrame({"text": [GOOD, BAD]})
    pd.testing.assert_frame_equal(
        judge.predict(rows), Judge.load(tmp_path, int8=False).predict(rows), atol=1e-5
    )
    (tmp_path / HEAD_FILE).unlink()
    with pytest.raises(ModelLoadError, match=HEAD_FILE):
        Judge.load(tmp_path)


def test_k_fold_over_few_seed_rows_picks_the_epoch_out_of_fold_and_never_touches_the_test_split(
    tiny_llama_dir: Path, tiny_bert_dir: Path
) -> None:
    config = head_config(
        tiny_llama_dir,
        tiny_bert_dir,
        "encoder",
        num_train_epochs=3,
        cross_validation_below=20,
        cross_validation_folds=3,
    )
    train, test = nodes.format_judge_examples(seeded_dataset(32, 16, 12), config)
    seed_ids = set(train.loc[train["source"] == "seed", "row_id"])
    fit, validation = nodes.split_validation(train, config)
    assert len(fit) == 32 and set(validation["row_id"]) == seed_ids
    judge, log = nodes.train_judge(fit, validation, config)

    folds = log["validation"]["fold_row_ids"]
    assert log["validation"]["folds"] == len(folds) == 3 and log["validation"]["rows"] == 12
    fold_ids = [row_id for ids in folds.values() for row_id in ids]
    assert sorted(fold_ids) == sorted(seed_ids)  # each seed row validates once, in one fold
    assert not set(fold_ids) & set(test["row_id"])
    entry = log["candidates"]["encoder"]
    # each fold's model trained on the 32 train rows less its own fold
    assert entry["fold_train_rows"] == [32 - len(ids) for ids in folds.values()]
    assert [len(epochs) for epochs in entry["fold_epochs"]] == [3, 3, 3]
    assert [scores["epoch"] for scores in entry["epochs"]] == [1, 2, 3]
    assert entry["validation"] == entry["epochs"][entry["best_epoch"] - 1]
    assert not any(better(scores, entry["validation"]) for scores in entry["epochs"])
    # the judge itself trained on every train row, for the chosen number of epochs
    assert log["summary"]["train_examples"] == 32
    assert log["summary"]["epochs_run"] == entry["best_epoch"]
    assert log["calibration"]["applied"] and log["calibration"]["validation_rows"] == 12
    predictions, _ = nodes.score_with_judge(judge, test)
    assert predictions["correct"].mean() > 0.75
