"""A long local job is dealt to worker processes, one per core; a dead worker's calls are decoded here."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from judgeforge.llm import LLMRequest
from judgeforge.llm.local import LocalChat
from judgeforge.llm.local_workers import MIN_CALLS_PER_WORKER, deal, workers_for
from tests.support.tiny_judge import save_checkpoint, tiny_llama

CALLS = 3 * MIN_CALLS_PER_WORKER


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with the embedded model's tokenizer, saved like a real checkpoint."""
    return save_checkpoint(tiny_llama(), tmp_path_factory.mktemp("tiny-llama"))


def requests() -> list[LLMRequest]:
    """Seeded calls with prompts of different lengths."""
    return [
        LLMRequest.from_prompt(
            "Tell me " + "more " * (i % 5) + f"about {i}.", max_tokens=12, seed=i
        )
        for i in range(CALLS)
    ]


@pytest.fixture(scope="module")
def one_process_texts(tiny_model_dir: Path) -> list[str]:
    """The answers' texts when one process decodes every call."""
    alone = LocalChat(model_dir=tiny_model_dir, workers=1, show_progress=False)
    return [a.text for a in alone.generate_batch(requests())]


def test_a_job_is_dealt_by_prompt_length_and_only_long_jobs_are_shared() -> None:
    assert deal([4, 0, 3, 1, 2], 2) == [[4, 3, 2], [0, 1]]
    assert deal([0, 1], 3) == [[0], [1], []]
    assert workers_for(2 * MIN_CALLS_PER_WORKER - 1, 2) == 1
    assert workers_for(2 * MIN_CALLS_PER_WORKER, 2) == 2
    assert workers_for(4 * MIN_CALLS_PER_WORKER, 4) == 4
    assert workers_for(3 * MIN_CALLS_PER_WORKER, 4) == 3
    assert workers_for(100, 1) == 1


def test_a_long_job_gets_the_answers_one_process_gives(
    tiny_model_dir: Path, one_process_texts: list[str]
) -> None:
    shared = LocalChat(model_dir=tiny_model_dir, workers=2, show_progress=False)
    expected = one_process_texts
    handed: dict[int, str] = {}

    def record(index: int, _answer: object) -> None:
        handed[index] = threading.current_thread().name

    answers = shared.generate_batch(requests(), record)
    assert [a.text for a in answers] == expected
    assert all(a.ok and a.output_tokens > 0 for a in answers)
    # every answer handed on once; half of them came from the worker, through another thread
    assert sorted(handed) == list(range(CALLS))
    assert len(set(handed.values())) == 2
    [worker] = shared._worker_processes
    assert worker._process.poll() is None  # kept for the next job
    assert [a.text for a in shared.generate_batch(requests())] == expected
    shared.close()
    assert worker._process.poll() is not None
    assert shared._worker_processes == []


def test_a_dead_worker_leaves_its_calls_to_this_process(
    tiny_model_dir: Path, one_process_texts: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    shared = LocalChat(model_dir=tiny_model_dir, workers=2, show_progress=False)
    expected = one_process_texts
    shared.generate_batch(requests())
    [worker] = shared._worker_processes
    worker._process.kill()
    worker._process.wait()
    with caplog.at_level(logging.WARNING, logger="judgeforge.llm.local"):
        answers = shared.generate_batch(requests())
    assert [a.text for a in answers] == expected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    expected_warning = (
        "a local generation worker process exited with status -9; "
        f"decoding its {CALLS // 2} unanswered calls in this process"
    )
    assert warnings == [expected_warning]
    shared.close()


def test_a_job_that_fails_here_stops_its_workers_and_the_next_job_starts_afresh(
    tiny_model_dir: Path, one_process_texts: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = LocalChat(model_dir=tiny_model_dir, workers=2, show_progress=False)
    expected = one_process_texts

    def fail(*_: object) -> None:
        raise MemoryError("this process ran out")

    with monkeypatch.context() as patch:
        patch.setattr(LocalChat, "_generate_here", fail)
        with pytest.raises(MemoryError):
            shared.generate_batch(requests())
    # the worker was mid-job: it is stopped, not left to answer into the next job
    assert shared._worker_processes == []
    assert [a.text for a in shared.generate_batch(requests())] == expected
    shared.close()


def test_jobs_sent_from_two_threads_at_once_each_get_their_own_answers(
    tiny_model_dir: Path, one_process_texts: list[str]
) -> None:
    shared = LocalChat(model_dir=tiny_model_dir, workers=2, show_progress=False)
    # the second thread's job asks the same calls in reverse order
    jobs = {"forward": requests(), "reverse": requests()[::-1]}
    texts: dict[str, list[str]] = {}

    def send(name: str) -> None:
        texts[name] = [a.text for a in shared.generate_batch(jobs[name])]

    threads = [threading.Thread(target=send, args=(name,), daemon=True) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert texts == {"forward": one_process_texts, "reverse": one_process_texts[::-1]}
    assert len(shared._worker_processes) == 1
    shared.close()
