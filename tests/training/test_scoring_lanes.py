"""Scoring on CPU in lanes: batches side by side on single-threaded lanes, each scored as alone."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch

from judgeforge.training import Judge
from judgeforge.training import judge as judge_module
from tests.training.test_judge_fast_scoring import HEADS, ROWS, saved_judge


@pytest.fixture
def torch_threads() -> Iterator[None]:
    """Restore torch's thread count after the test."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("head", HEADS)
def test_batches_scored_in_lanes_match_batches_scored_one_after_another(
    head: str,
    tiny_llama_dir: Path,
    tiny_bert_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    torch_threads: None,
) -> None:
    monkeypatch.setattr(judge_module, "SCORING_BATCH_SIZE", 2)  # several batches from a few rows
    judge = Judge.load(saved_judge(head, tmp_path, tiny_llama_dir, tiny_bert_dir, int8=None))
    threads_seen: set[str] = set()
    judge.model.register_forward_pre_hook(
        lambda module, args: threads_seen.add(threading.current_thread().name)
    )

    torch.set_num_threads(1)  # one thread: one lane, the batches one after another
    serial = judge.predict(ROWS)
    assert threads_seen == {threading.current_thread().name}
    assert torch.get_num_threads() == 1

    threads_seen.clear()
    torch.set_num_threads(2)
    lanes = judge.predict(ROWS)
    # the causal heads' shared prefix runs once, on the calling thread, before the lanes start
    assert {name for name in threads_seen if name.startswith("scoring-lane")} == {
        "scoring-lane_0",
        "scoring-lane_1",
    }
    assert torch.get_num_threads() == 2  # given back after scoring
    pd.testing.assert_frame_equal(lanes, serial)
