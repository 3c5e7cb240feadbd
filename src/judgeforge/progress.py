"""Live progress of the long stages: a rich display on a terminal, a plain log line elsewhere.

Any loop that takes minutes (LLM calls, local generation, embedding, training, scoring) opens a
stage and advances it:

    with progress.stage("scoring", total=len(rows), unit="rows") as scoring:
        for batch in batches:
            ...
            scoring.advance(len(batch), tokens=n_tokens)

On a terminal every open stage is one line of a rich display (done/total, rejected, rate, ETA,
tokens, cost). When stdout is not a terminal (CI, `kedro run > log`, a notebook's captured
output) a background thread logs one line per open stage every few seconds, so a long run is
never silent even while one batch takes minutes, and one closing line per stage.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

logger = logging.getLogger(__name__)

# Seconds between two plain progress lines; an environment variable so tests and CI can change it.
INTERVAL_ENV = "JUDGEFORGE_PROGRESS_INTERVAL"
DEFAULT_INTERVAL_SECONDS = 5.0

_current_node: str | None = None


def set_current_node(name: str | None) -> None:
    """Name the pipeline node now running; stages opened inside it carry its name."""
    global _current_node
    _current_node = name


@dataclass
class Stage:
    """Counters of one long stage; `advance` is the only call a loop needs."""

    name: str
    total: int | None
    unit: str = "calls"
    done: int = 0
    rejected: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _on_change: list = field(default_factory=list, repr=False)

    def advance(
        self, done: int = 1, *, rejected: int = 0, tokens: int = 0, cost_usd: float = 0.0
    ) -> None:
        """Count `done` finished items (of which `rejected` failed), the tokens they used and their cost.

        `done=0` with tokens is fine: a generator can report tokens while a batch is still running.
        """
        with self._lock:
            self.done += done
            self.rejected += rejected
            self.tokens += tokens
            self.cost_usd += cost_usd
        for notify in self._on_change:
            notify(self)

    @property
    def elapsed_s(self) -> float:
        """Seconds since the stage opened."""
        return time.monotonic() - self.started

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before the first item or without a total)."""
        if not self.total or not self.done:
            return None
        return max(0.0, (self.total - self.done) * self.elapsed_s / self.done)

    def line(self, finished: bool = False) -> str:
        """One plain line: done / queued, rejected, rate, tokens/s, cost, and the ETA (or the time taken)."""
        elapsed = max(self.elapsed_s, 1e-9)
        queued = f", {self.total - self.done} queued" if self.total is not None else ""
        parts = [
            f"{self.name}: {self.done}/{self.total if self.total is not None else '?'} {self.unit} done{queued}"
        ]
        if self.rejected:
            parts.append(f"{self.rejected} rejected")
        parts.append(f"{self.done / elapsed:.2f} {self.unit}/s")
        if self.tokens:
            parts.append(f"{self.tokens:,} tokens ({self.tokens / elapsed:.1f} tokens/s)")
        if self.cost_usd:
            parts.append(f"${self.cost_usd:.4f}")
        eta = None if finished else self.eta_s()
        if eta is not None:
            parts.append(f"ETA {_clock(eta)}")
        else:
            parts.append(f"{'took' if finished else 'elapsed'} {_clock(self.elapsed_s)}")
        return ", ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class _RateColumn(ProgressColumn):
    """Items per second of the task, in its own unit."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "")
        return Text(
            f"{speed:.2f} {unit}/s" if speed else f"- {unit}/s", style="progress.data.speed"
        )


class _CountsColumn(ProgressColumn):
    """Rejected, tokens and cost of the task, when there are any."""

    def render(self, task: Task) -> Text:
        stage: Stage = task.fields["stage"]
        parts = []
        if stage.rejected:
            parts.append(f"{stage.rejected} rejected")
        if stage.tokens:
            parts.append(f"{stage.tokens:,} tok")
        if stage.cost_usd:
            parts.append(f"${stage.cost_usd:.4f}")
        return Text(" · ".join(parts), style="progress.download")


class _Display:
    """Every open stage, shown one way: a rich live display, or periodic log lines.

    Plain lines are logged under the lock that opens and closes stages, so a periodic line of a
    stage can never follow its closing line, and a stage closes (one closing line) only once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, Stage] = {}
        self._rich: Progress | None = None
        self._tasks: dict[int, int] = {}
        self._ticker: threading.Thread | None = None
        self._stop_ticker = threading.Event()

    def open(self, stage: Stage) -> None:
        with self._lock:
            self._open[id(stage)] = stage
            if Console().is_terminal:
                self._open_rich(stage)
            elif self._ticker is None:
                # an event per ticker: a stopped ticker still on its way out stays stopped
                self._stop_ticker = threading.Event()
                self._ticker = threading.Thread(
                    target=self._tick,
                    args=(self._stop_ticker,),
                    name="judgeforge-progress",
                    daemon=True,
                )
                self._ticker.start()

    def close(self, stage: Stage) -> None:
        with self._lock:
            if self._open.pop(id(stage), None) is None:
                return
            task = self._tasks.pop(id(stage), None)
            if self._rich is not None and task is not None:
                self._rich.update(task, completed=stage.done, refresh=True)
                if not self._tasks:
                    self._rich.stop()
                    self._rich = None
                return
            logger.info(stage.line(finished=True))
            ticker = self._ticker if not self._open else None
            if ticker is not None:
                self._ticker = None
                self._stop_ticker.set()
        if ticker is not None:
            ticker.join()

    def close_all(self) -> None:
        with self._lock:
            left = list(self._open.values())
        for stage in left:
            self.close(stage)

    def _open_rich(self, stage: Stage) -> None:
        if self._rich is None:
            self._rich = Progress(
                TextColumn("[progress.description]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                _RateColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                _CountsColumn(),
                transient=False,
            )
            self._rich.start()
        self._tasks[id(stage)] = self._rich.add_task(
            stage.name, total=stage.total, unit=stage.unit, stage=stage
        )
        stage._on_change.append(self._update_rich)

    def _update_rich(self, stage: Stage) -> None:
        progress, task = self._rich, self._tasks.get(id(stage))
        if progress is not None and task is not None:
            progress.update(task, completed=stage.done)

    def _tick(self, stop: threading.Event) -> None:
        interval = float(os.environ.get(INTERVAL_ENV) or DEFAULT_INTERVAL_SECONDS)
        while not stop.wait(interval):
            self.log_open_stages()

    def log_open_stages(self) -> None:
        """Log one progress line per open stage (what the background thread does every interval)."""
        with self._lock:
            for stage in self._open.values():
                logger.info(stage.line())


_display = _Display()


@contextmanager
def stage(
    name: str, total: int | None, unit: str = "calls", *, enabled: bool = True
) -> Iterator[Stage]:
    """Open a stage for the block: shown live on a terminal, logged every few seconds elsewhere.

    The name is prefixed with the running node's name; `enabled=False` counts without showing.
    """
    label = f"{_current_node} · {name}" if _current_node and _current_node != name else name
    current = Stage(name=label, total=total, unit=unit)
    if not enabled or total == 0:
        yield current
        return
    _display.open(current)
    try:
        yield current
    finally:
        _display.close(current)


def close_open_stages() -> None:
    """Close every stage still open (a node failed inside one): the display must not outlive it."""
    _display.close_all()
