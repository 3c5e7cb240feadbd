"""Faster judging: the generate head's own system message, the shared prefix run once, int8
layers, a bfloat16 model on a CPU with AMX."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from judgeforge.config.training import TrainingConfig
from judgeforge.llm.quantized import Int8Linear
from judgeforge.pipelines.training import nodes
from judgeforge.training import Judge
from judgeforge.training import judge as judge_module
from judgeforge.training.judge import (
    JUDGE_CONFIG_FILE,
    PREDICTION_COLUMN,
    probability_column,
    scoring_precision,
)
from judgeforge.training.runtime import resolve_runtime_options
from tests.support.busy_cores import every_core_busy
from tests.support.tiny_judge import SEPARABLE_TEXTS, tiny_judge_config

ROWS = pd.DataFrame({"text": [*SEPARABLE_TEXTS, "good bad good", "a film that is neither"]})
HEADS = ("generate", "classify", "encoder")


def saved_judge(
    head: str, folder: Path, tiny_llama_dir: Path, tiny_bert_dir: Path, int8: bool | None
) -> Path:
    """Save an untrained judge of `head` (random classification weights) with int8_inference `int8`."""
    config = TrainingConfig.model_validate(
        tiny_judge_config(
            tiny_llama_dir,
            model={"head": head, "encoder_name": str(tiny_bert_dir), "int8_inference": int8},
        )
    )
    judge = Judge.trainable(config, resolve_runtime_options(config.training, config.model), head)
    if head == "encoder":
        torch.manual_seed(0)
        torch.nn.init.normal_(judge.model.head.weight)  # a zero head would score every row alike
    judge.save(folder)
    return folder


def probabilities(frame: pd.DataFrame) -> np.ndarray:
    return frame[[probability_column("false"), probability_column("true")]].to_numpy()


@pytest.mark.parametrize("head", HEADS)
def test_an_int8_judge_scores_every_row_as_it_would_alone_and_reloads_identically(
    head: str, tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = saved_judge(head, tmp_path, tiny_llama_dir, tiny_bert_dir, int8=True)
    judge = Judge.load(folder)
    assert judge.precision == "int8"
    batch = judge.predict(ROWS)
    body = judge.model.encoder if head == "encoder" else judge.model.base_model
    assert any(isinstance(m, Int8Linear) for m in body.modules())
    # The output head stays float: it is a small share of the work and decides the label.
    output = {"generate": "lm_head", "classify": "score", "encoder": "head"}[head]
    assert type(getattr(judge.model, output)) is torch.nn.Linear

    np.testing.assert_allclose(probabilities(batch).sum(axis=1), 1.0, atol=1e-6)
    for index in range(len(ROWS)):
        alone = judge.predict(ROWS.iloc[[index]])
        pd.testing.assert_frame_equal(alone, batch.iloc[[index]], check_exact=False, atol=1e-6)
    pd.testing.assert_frame_equal(Judge.load(folder).predict(ROWS), batch)

    float32 = Judge.load(folder, int8=False)
    assert float32.precision == "float32"
    float_probabilities = probabilities(float32.predict(ROWS))
    # int8 changes the numbers a little, not the judge.
    assert not np.array_equal(float_probabilities, probabilities(batch))
    np.testing.assert_allclose(float_probabilities, probabilities(batch), atol=0.05)


@pytest.mark.parametrize("head", ["generate", "classify"])
def test_the_shared_prefix_runs_once_and_changes_no_score(
    head: str, tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    judge = Judge.load(saved_judge(head, tmp_path, tiny_llama_dir, tiny_bert_dir, int8=False))
    ids = judge.inputs_ids(judge.render(ROWS)[0])
    prefix = judge.shared_prefix_ids
    # "Text:" and, for generate, the whole system message and the user's turn before it.
    assert len(prefix) >= (12 if head == "generate" else 2)
    assert all(row[: len(prefix)] == prefix and len(row) > len(prefix) for row in ids)
    shared = judge.predict(ROWS)
    judge.shared_prefix_ids = []
    every_token = judge.predict(ROWS)
    pd.testing.assert_frame_equal(shared, every_token, check_exact=False, atol=1e-5)
    # A prefix only some rows start with: those reuse it, the others run every token.
    judge.shared_prefix_ids = ids[0][:-1]
    pd.testing.assert_frame_equal(judge.predict(ROWS), every_token, check_exact=False, atol=1e-5)


def test_the_generate_head_reads_a_contiguous_copy_of_the_answer_positions(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    # the last position of each padded row is a strided view; torch multiplies it by copying
    # the output head's weight once per row (2.2 s for 32 rows of SmolLM2 in bfloat16)
    judge = Judge.load(saved_judge("generate", tmp_path, tiny_llama_dir, tiny_bert_dir, False))
    seen: list[bool] = []
    head = judge.model.get_output_embeddings()
    head.register_forward_pre_hook(lambda _, inputs: seen.append(inputs[0].is_contiguous()))
    judge.predict(ROWS)
    assert seen and all(seen), seen


def test_int8_inference_is_recorded_and_an_int8_judge_that_scored_refuses_to_save(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = saved_judge("classify", tmp_path / "judge", tiny_llama_dir, tiny_bert_dir, int8=True)
    saved = json.loads((folder / JUDGE_CONFIG_FILE).read_text())
    assert saved["config"]["model"]["int8_inference"] is True
    judge = Judge.load(folder)
    judge.save(tmp_path / "copy")  # not yet scored: its float weights are still there
    assert Judge.load(tmp_path / "copy").precision == "int8"
    examples = ROWS.assign(prompt=ROWS["text"], answer="true", label="true")
    _, scoring = nodes.score_with_judge(judge, examples)
    assert scoring["precision"] == nodes._cost(scoring, "cpu")["precision"] == "int8"
    with pytest.raises(ValueError, match="scored in int8"):
        judge.save(tmp_path / "again")
    off = saved_judge("classify", tmp_path / "off", tiny_llama_dir, tiny_bert_dir, int8=False)
    assert Judge.load(off).precision == "float32"


def test_by_default_encoder_and_classify_judges_score_in_int8_and_generate_in_float(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judge_module, "bfloat16_products_are_fast", lambda: False)
    monkeypatch.setattr(judge_module, "int8_products_are_fast", lambda: True)
    for head, expected in (("encoder", "int8"), ("classify", "int8"), ("generate", "float32")):
        folder = saved_judge(head, tmp_path / head, tiny_llama_dir, tiny_bert_dir, int8=None)
        saved = json.loads((folder / JUDGE_CONFIG_FILE).read_text())
        assert saved["config"]["model"]["int8_inference"] is None
        assert Judge.load(folder).precision == expected, head
        other = "float32" if expected == "int8" else "int8"
        assert Judge.load(folder, int8=other == "int8").precision == other, head


def test_on_a_cpu_with_amx_every_default_judge_scores_as_a_bfloat16_model_unless_told(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(judge_module, "bfloat16_products_are_fast", lambda: True)
    monkeypatch.setattr(judge_module, "int8_products_are_fast", lambda: True)
    for head in HEADS:
        folder = saved_judge(head, tmp_path / head, tiny_llama_dir, tiny_bert_dir, int8=None)
        judge = Judge.load(folder)
        assert judge.precision == "bfloat16", head
        # float32 weights until it scores: a judge only saved again keeps them
        assert {p.dtype for p in judge.model.parameters()} == {torch.float32}
        scored = probabilities(judge.predict(ROWS))
        assert {p.dtype for p in judge.model.parameters()} == {torch.bfloat16}, head
        np.testing.assert_allclose(scored.sum(axis=1), 1.0, atol=1e-6)
        float32 = probabilities(Judge.load(folder, int8=False).predict(ROWS))
        # bfloat16 changes the numbers a little, not the judge
        assert not np.array_equal(scored, float32), head
        np.testing.assert_allclose(scored, float32, atol=0.05)
        with pytest.raises(ValueError, match="scored in bfloat16"):
            judge.save(tmp_path / f"{head}-again")
        assert Judge.load(folder, int8=True).precision == "int8", head
    told = saved_judge("classify", tmp_path / "told", tiny_llama_dir, tiny_bert_dir, int8=False)
    assert Judge.load(told).precision == "float32"


def test_on_a_cpu_without_an_int8_dot_product_judges_score_in_float_unless_told_and_warned(
    tiny_llama_dir: Path,
    tiny_bert_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(judge_module, "bfloat16_products_are_fast", lambda: False)
    monkeypatch.setattr(judge_module, "int8_products_are_fast", lambda: False)
    for head in HEADS:
        folder = saved_judge(head, tmp_path / head, tiny_llama_dir, tiny_bert_dir, int8=None)
        with caplog.at_level(logging.WARNING, logger="judgeforge.training.judge"):
            assert Judge.load(folder).precision == "float32", head
        assert not caplog.records
    told = saved_judge("classify", tmp_path / "told", tiny_llama_dir, tiny_bert_dir, int8=True)
    with caplog.at_level(logging.WARNING, logger="judgeforge.training.judge"):
        assert Judge.load(told).precision == "int8"
    assert "no int8 dot product" in caplog.text and "set it to null or false" in caplog.text


def test_judgeforge_predict_of_a_default_judge_scores_in_the_precision_this_cpu_runs_fastest(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = saved_judge("classify", tmp_path / "judge", tiny_llama_dir, tiny_bert_dir, int8=None)
    result, scored_path = judgeforge_predict(folder, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # bfloat16 on a CPU with AMX, int8 layers on one with an int8 dot product, else float32
    precision = scoring_precision("classify", None)
    assert f"judge: scoring in {precision} on this CPU" in result.stdout + result.stderr
    scored = pd.read_csv(scored_path, dtype={PREDICTION_COLUMN: str})
    expected = Judge.load(folder).predict(ROWS)
    np.testing.assert_allclose(probabilities(scored), probabilities(expected), atol=1e-6)
    float32 = Judge.load(folder, int8=False).predict(ROWS)
    difference = np.abs(probabilities(scored) - probabilities(float32)).max()
    assert bool(difference > 1e-6) is (precision != "float32"), difference


def test_the_generate_head_keeps_the_system_message_it_was_saved_with(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = saved_judge("generate", tmp_path, tiny_llama_dir, tiny_bert_dir, int8=False)
    saved = json.loads((folder / JUDGE_CONFIG_FILE).read_text())
    assert saved["uses_chat_template"] and saved["system_prompt"] == "Answer true or false."
    judge = Judge.load(folder)
    assert judge.chat.system == "Answer true or false."
    text = judge.tokenizer.decode(judge.prompt_ids("Text: good\nIs it positive?"))
    assert text.startswith("<|im_start|>system\nAnswer true or false.<|im_end|>\n<|im_start|>user")
    saved["system_prompt"] = "Say true or false."
    (folder / JUDGE_CONFIG_FILE).write_text(json.dumps(saved))
    assert Judge.load(folder).chat.system == "Say true or false."


def judgeforge_predict(
    folder: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, Path]:
    """Run `judgeforge predict` of `folder` on ROWS in a subprocess; return it and the scored file."""
    rows, scored = tmp_path / "rows.csv", tmp_path / "scored.csv"
    ROWS.to_csv(rows, index=False)
    command = [sys.executable, "-m", "judgeforge", "predict", "-m", str(folder), "-i", str(rows)]
    result = subprocess.run(
        [*command, "-o", str(scored)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return result, scored


@pytest.mark.parametrize("head", ["generate", "encoder"])
def test_judgeforge_predict_scores_with_int8_layers_when_the_judge_says_so(
    head: str, tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = saved_judge(head, tmp_path / "judge", tiny_llama_dir, tiny_bert_dir, int8=True)
    result, scored_path = judgeforge_predict(folder, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    scored = pd.read_csv(scored_path, dtype={PREDICTION_COLUMN: str})
    int8 = Judge.load(folder, int8=True).predict(ROWS)
    float32 = Judge.load(folder, int8=False).predict(ROWS)
    np.testing.assert_allclose(probabilities(scored), probabilities(int8), atol=1e-6)
    assert np.abs(probabilities(scored) - probabilities(float32)).max() > 1e-6
    assert list(scored[PREDICTION_COLUMN]) == list(int8[PREDICTION_COLUMN])


def test_judgeforge_predict_scores_on_one_thread_while_other_processes_keep_every_core_busy(
    tiny_llama_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    folder = saved_judge("encoder", tmp_path / "judge", tiny_llama_dir, tiny_bert_dir, int8=True)
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}
    with every_core_busy() as cores:
        if cores == 1:
            pytest.skip("one core: there is no thread to give up")
        result, scored = judgeforge_predict(folder, tmp_path, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"using 1 of {cores} CPU threads" in result.stdout + result.stderr, result.stderr[-3000:]
    assert len(pd.read_csv(scored)) == len(ROWS)
