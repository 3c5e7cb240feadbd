"""Worker processes for the local provider: each core decodes its own share of the calls.

A decoding step of a 135M model is mostly Python and operators too small for torch to split
over threads, so two torch threads keep about 1.4 of 2 cores busy, and two Python threads take
turns on the interpreter lock (BENCHMARKS.md, issue 15). A process per core has neither limit.
Each worker is a Python process running `serve(MODEL_DIR, THREADS, BATCH_SIZE)`: it loads the
model once, then answers one list of requests after another, sending each answer back as
it finishes. Requests and answers travel as pickles over the worker's stdin and stdout.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import judgeforge
from judgeforge.llm.types import LLMRequest, LLMResponse

# More processes than this would each hold a model copy for batches too small to pay for it.
MAX_AUTO_WORKERS = 4
# Rows decoded together share each step's reading of the weights, so a process decoding few rows
# wastes part of its step. On 2 cores, jobs of 16 examples dealt as 2 × 8 calls ran ×1.16–1.25 as
# fast as 16 rows on 2 threads (one-sentence, rag and ~1,500-character rows; BENCHMARKS.md,
# issue 15, ninth round); 32 as 2 × 16 ×1.1–1.3, 64 as 2 × 32 ×1.25–1.9 (sixth round).
MIN_CALLS_PER_WORKER = 8


# Not `python -m` this module: judgeforge.llm imports it first, and runpy warns about that.
WORKER_MAIN = "import sys; from judgeforge.llm.local_workers import serve; serve(*sys.argv[1:])"


class LocalWorkerError(RuntimeError):
    """A worker process failed or exited before answering its calls."""


def auto_workers() -> int:
    """One worker per torch CPU thread, at most MAX_AUTO_WORKERS."""
    import torch

    return max(1, min(MAX_AUTO_WORKERS, torch.get_num_threads()))


def workers_for(calls: int, workers: int) -> int:
    """How many processes share a job of `calls` calls: up to `workers`, each with enough calls to pay for it."""
    return max(1, min(workers, calls // MIN_CALLS_PER_WORKER))


def deal(order: Sequence[int], count: int) -> list[list[int]]:
    """`order` dealt round-robin into `count` shares, so each gets short and long prompts alike."""
    return [list(order[start::count]) for start in range(count)]


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with `count` torch CPU threads, then restore the previous number."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class WorkerProcess:
    """One worker process decoding with its own copy of the model on `threads` torch threads."""

    def __init__(self, model_dir: Path, threads: int, batch_size: int):
        self.threads = threads
        # the worker imports the same judgeforge as this process, installed or not
        package_root = str(Path(judgeforge.__file__).resolve().parents[1])
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-c", WORKER_MAIN, str(model_dir), str(threads), str(batch_size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1"},
        )

    def send(self, requests: Sequence[LLMRequest]) -> None:
        """Hand the worker `requests`; their answers come from `answers`."""
        try:
            _write(self._process.stdin, list(requests))
        except (BrokenPipeError, OSError):
            pass  # a dead worker is reported by `answers`

    def answers(self, on_answer: Callable[[int, LLMResponse], None]) -> tuple[int, int, int]:
        """Pass each answer to the last `send` on as it comes; return the worker's (forward passes,
        prefilled tokens, layer calls by the decoding-attention kernel) for it.

        Raises LocalWorkerError when the worker fails or exits first.
        """
        while True:
            try:
                kind, *content = pickle.load(self._process.stdout)
            except (EOFError, pickle.UnpicklingError, OSError):
                status = self._process.poll()
                raise LocalWorkerError(
                    "a local generation worker process exited "
                    + (f"with status {status}" if status is not None else "without answering")
                ) from None
            if kind == "answer":
                on_answer(*content)
            elif kind == "done":
                return content[0], content[1], content[2]
            else:
                raise LocalWorkerError(f"a local generation worker failed: {content[0]}")

    def close(self) -> None:
        """Stop the worker: it exits when its input ends."""
        with contextlib.suppress(OSError):
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(OSError):
            self._process.stdout.close()


def close_workers(workers: list[WorkerProcess]) -> None:
    """Stop every worker in `workers` and empty the list."""
    while workers:
        workers.pop().close()


def _write(stream: IO[bytes] | None, message: Any) -> None:
    assert stream is not None
    pickle.dump(message, stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.flush()


def serve(model_dir: str, threads: str, batch_size: str) -> None:
    """Answer request lists read from stdin until it ends, each answer written to stdout as it finishes.

    The arguments are the worker's command line: the model directory, torch threads and batch size.
    """
    import torch
    from transformers.utils import logging as transformers_logging

    from judgeforge.llm.local import LocalChat

    # The answers own stdout; anything else a library prints goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    transformers_logging.disable_progress_bar()
    torch.set_num_threads(int(threads))
    chat = LocalChat(
        model_dir=Path(model_dir), batch_size=int(batch_size), show_progress=False, workers=1
    )
    while True:
        try:
            requests = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        counts = chat.forward_passes, chat.prefilled_tokens, chat.kernel_attention_calls
        try:
            chat.generate_batch(
                requests, lambda index, answer: _write(replies, ("answer", index, answer))
            )
        except Exception as error:  # noqa: BLE001 - any failure goes back to the caller, who raises it
            _write(replies, ("error", f"{type(error).__name__}: {error}"))
            continue
        now = chat.forward_passes, chat.prefilled_tokens, chat.kernel_attention_calls
        _write(replies, ("done", *(after - before for after, before in zip(now, counts))))
