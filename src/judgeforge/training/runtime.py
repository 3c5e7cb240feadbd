"""What the hardware and installed packages allow of the requested training options, with fallbacks.

Fallbacks (each logged as one warning line and recorded in the training log):
- `bf16` without a CUDA GPU that supports it, `fp16` without a CUDA GPU: full fp32.
- 8-bit / paged optimizers without CUDA and bitsandbytes: `adamw_torch`.
- `torch_compile` without a C compiler (TorchInductor needs one): eager mode.
- `use_wandb` without `WANDB_API_KEY` or the `wandb` package: no experiment tracker.
- `use_unsloth_tokenizer` without CUDA and the `unsloth` package: the model's standard tokenizer.
- `lr_scheduler_type: reduce_lr_on_plateau` needs a validation split, and the only holdout is the
  real test split (kept out of training): `constant`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
from dataclasses import dataclass, field

import psutil
import torch

from judgeforge.config.training import HyperparametersConfig, ModelConfig

logger = logging.getLogger(__name__)

# Long enough to see a busy core, short next to scoring or training.
BUSY_SAMPLE_SECONDS = 0.25
FALLBACK_OPTIMIZER = "adamw_torch"
FALLBACK_SCHEDULER = "constant"
BITSANDBYTES_OPTIMIZERS = frozenset(
    {"adamw_8bit", "paged_adamw_8bit", "adamw_bnb_8bit", "lion_8bit", "paged_lion_8bit"}
)


@dataclass(frozen=True)
class RuntimeOptions:
    """The training options in effect after fallbacks, and the fallbacks taken."""

    device: str
    bf16: bool
    fp16: bool
    optim: str
    lr_scheduler_type: str
    torch_compile: bool
    report_to: str
    use_unsloth_tokenizer: bool
    fallbacks: list[str] = field(default_factory=list)

    @property
    def model_dtype(self) -> torch.dtype:
        """Return the dtype to load base weights in: bf16 when training in bf16, else fp32 (fp16 uses AMP)."""
        return torch.bfloat16 if self.bf16 else torch.float32


def resolve_runtime_options(
    hyperparameters: HyperparametersConfig, model: ModelConfig
) -> RuntimeOptions:
    """Return the options this machine can honour, logging one warning per fallback."""
    cuda = torch.cuda.is_available()
    fallbacks: list[str] = []

    bf16 = hyperparameters.bf16
    if bf16 and not (cuda and torch.cuda.is_bf16_supported()):
        fallbacks.append("bf16 needs a CUDA GPU with bfloat16 support; training in fp32")
        bf16 = False
    fp16 = hyperparameters.fp16
    if fp16 and not cuda:
        fallbacks.append("fp16 needs a CUDA GPU; training in fp32")
        fp16 = False

    optim = hyperparameters.optim
    if optim in BITSANDBYTES_OPTIMIZERS and not (cuda and _installed("bitsandbytes")):
        fallbacks.append(
            f"optim {optim} needs a CUDA GPU and bitsandbytes; using {FALLBACK_OPTIMIZER}"
        )
        optim = FALLBACK_OPTIMIZER

    scheduler = hyperparameters.lr_scheduler_type
    if scheduler == "reduce_lr_on_plateau":
        fallbacks.append(
            "lr_scheduler_type reduce_lr_on_plateau needs a validation split and the test split stays out of "
            f"training; using {FALLBACK_SCHEDULER}"
        )
        scheduler = FALLBACK_SCHEDULER

    torch_compile = hyperparameters.torch_compile
    if torch_compile and not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
        fallbacks.append(
            "torch_compile needs a C compiler for TorchInductor; training in eager mode"
        )
        torch_compile = False

    report_to = "none"
    if hyperparameters.use_wandb:
        if not os.environ.get("WANDB_API_KEY"):
            fallbacks.append(
                "use_wandb is true but WANDB_API_KEY is not set; not logging to Weights & Biases"
            )
        elif not _installed("wandb"):
            fallbacks.append(
                "use_wandb is true but the wandb package is not installed; not logging to Weights & Biases"
            )
        else:
            report_to = "wandb"

    unsloth = model.use_unsloth_tokenizer
    if unsloth and not (cuda and _installed("unsloth")):
        fallbacks.append(
            "use_unsloth_tokenizer needs a CUDA GPU and the unsloth package; using the standard tokenizer"
        )
        unsloth = False

    for message in fallbacks:
        logger.warning(message)
    return RuntimeOptions(
        device="cuda" if cuda else "cpu",
        bf16=bf16,
        fp16=fp16,
        optim=optim,
        lr_scheduler_type=scheduler,
        torch_compile=torch_compile,
        report_to=report_to,
        use_unsloth_tokenizer=unsloth,
        fallbacks=fallbacks,
    )


def use_free_cores() -> int:
    """Set torch's CPU threads to the cores other processes leave free (at least 1); return the count.

    torch starts one thread per core; on a machine other jobs keep busy those threads wait on each
    other (measured here: MiniLM at 2 threads under load ran at a third of its 1-thread speed).
    The busy cores are sampled while this process waits (BUSY_SAMPLE_SECONDS), not read from the
    load average: that one lags by a minute and counts this process's own threads after it has
    worked, so a judge scored right after training on an idle machine got half its cores.
    `OMP_NUM_THREADS`, when set, is left to decide.
    """
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    busy_elsewhere = psutil.cpu_percent(interval=BUSY_SAMPLE_SECONDS) / 100 * psutil.cpu_count()
    threads = max(1, min(cores, round(cores - busy_elsewhere)))
    if threads != torch.get_num_threads():
        torch.set_num_threads(threads)
        logger.info(
            "using %d of %d CPU threads (%.1f cores busy with other work)",
            threads,
            cores,
            busy_elsewhere,
        )
    return threads


def _installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None
