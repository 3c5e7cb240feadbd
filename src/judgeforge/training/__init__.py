"""Fine-tuning and using a judge: `Judge.load(path).predict(rows)` and the `predict` command."""

from judgeforge.training.judge import Judge, predict_command

__all__ = ["Judge", "predict_command"]
