"""Training shown as a progress stage: one step of the optimizer is one item."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from transformers import TrainerCallback

from judgeforge import progress


class TrainingProgress(TrainerCallback):
    """Opens a `training` stage when training starts and advances it at every optimizer step."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._stage: progress.Stage | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._stage = self._stack.enter_context(
            progress.stage("training", state.max_steps, unit="steps")
        )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._stage is not None:
            self._stage.advance()

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._stage = None
        self._stack.close()
