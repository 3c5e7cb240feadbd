"""Fine-tuning a judge: TRL's SFTTrainer for the generate head (loss on the answer tokens only), the
transformers Trainer with cross-entropy over the classes for the classification heads."""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile
from collections.abc import Sequence
from typing import Any

from judgeforge.config.training import HyperparametersConfig
from judgeforge.training.distributed import current_launch, ddp_backend, gathered
from judgeforge.training.runtime import RuntimeOptions

logger = logging.getLogger(__name__)

# Schedulers that transformers cannot build without extra arguments: the values judgeforge uses.
COSINE_MIN_LR_RATE = 0.1  # cosine_with_min_lr decays to 10% of the peak rate
WSD_DECAY_FRACTION = 0.1  # warmup_stable_decay decays over the last 10% of the steps


def optimizer_steps(
    n_examples: int, hyperparameters: HyperparametersConfig, processes: int = 1
) -> int:
    """Return how many optimizer steps training takes, each of `processes` taking its own batch per step."""
    batches_per_epoch = math.ceil(
        n_examples / (hyperparameters.per_device_train_batch_size * processes)
    )
    return hyperparameters.num_train_epochs * math.ceil(
        batches_per_epoch / hyperparameters.gradient_accumulation_steps
    )


def scheduler_kwargs(scheduler: str, total_steps: int) -> dict[str, Any]:
    """Return the extra arguments a scheduler needs."""
    if scheduler == "cosine_with_min_lr":
        return {"min_lr_rate": COSINE_MIN_LR_RATE}
    if scheduler == "warmup_stable_decay":
        return {"num_decay_steps": max(1, round(total_steps * WSD_DECAY_FRACTION))}
    return {}


def trainer_arguments(
    hyperparameters: HyperparametersConfig,
    options: RuntimeOptions,
    n_examples: int,
    output_dir: str,
    learning_rate: float,
) -> dict[str, Any]:
    """Return the Trainer arguments every head shares: each hyperparameter mapped, after the runtime fallbacks."""
    launch = current_launch()
    processes = launch.world_size if launch else 1
    return {
        "output_dir": output_dir,
        "num_train_epochs": hyperparameters.num_train_epochs,
        "per_device_train_batch_size": hyperparameters.per_device_train_batch_size,
        "gradient_accumulation_steps": hyperparameters.gradient_accumulation_steps,
        "learning_rate": learning_rate,
        "warmup_steps": hyperparameters.warmup_steps,
        "weight_decay": hyperparameters.weight_decay,
        "max_grad_norm": hyperparameters.max_grad_norm,
        "logging_steps": hyperparameters.logging_steps,
        "logging_first_step": True,
        "lr_scheduler_type": options.lr_scheduler_type,
        "lr_scheduler_kwargs": scheduler_kwargs(
            options.lr_scheduler_type, optimizer_steps(n_examples, hyperparameters, processes)
        ),
        "seed": hyperparameters.seed,
        "data_seed": hyperparameters.seed,
        "torch_compile": options.torch_compile,
        "bf16": options.bf16,
        "fp16": options.fp16,
        "optim": options.optim,
        "report_to": options.report_to,
        "save_strategy": "no",
        "use_cpu": options.device == "cpu",
        # None (one process) leaves the Trainer as it was; under a launch, name the backend
        "ddp_backend": ddp_backend(options.device) if launch else None,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def sft_config(
    hyperparameters: HyperparametersConfig,
    options: RuntimeOptions,
    n_examples: int,
    output_dir: str,
) -> Any:
    """Return the SFTConfig of a generate-head run."""
    from trl import SFTConfig

    return SFTConfig(
        **trainer_arguments(
            hyperparameters, options, n_examples, output_dir, hyperparameters.learning_rate
        ),
        max_length=hyperparameters.max_seq_length,
        completion_only_loss=True,
        # Checkpointing trades compute for memory: worth it for billion-parameter models on a GPU,
        # a pure slowdown for a 135M model on a CPU.
        activation_checkpointing=options.device == "cuda",
    )


def train_adapter(
    peft_model: Any,
    tokenizer: Any,
    records: Sequence[dict[str, Any]],
    hyperparameters: HyperparametersConfig,
    options: RuntimeOptions,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train the LoRA weights of `peft_model` in place; return the log history and throughput summary."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTTrainer

    from judgeforge.training.progress import TrainingProgress

    with tempfile.TemporaryDirectory(prefix="judgeforge-sft-") as scratch:
        trainer = SFTTrainer(
            model=peft_model,
            args=sft_config(hyperparameters, options, len(records), scratch),
            train_dataset=Dataset.from_list(list(records)),
            processing_class=tokenizer,
            callbacks=[TrainingProgress(), *callbacks],
        )
        # TrainingProgress replaces the dict of numbers transformers prints at every logging step.
        trainer.remove_callback(PrinterCallback)
        trained_examples = len(trainer.train_dataset)
        tokens_per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
        if trained_examples < len(records):
            logger.warning(
                "%d of %d training examples do not fit training.max_seq_length=%d with their answer and are skipped",
                len(records) - trained_examples,
                len(records),
                hyperparameters.max_seq_length,
            )
        result = trainer.train()
    return _training_log(trainer, result, tokens_per_epoch, len(records) - trained_examples)


def train_classifier(
    model: Any,
    tokenizer: Any,
    prompts_ids: Sequence[list[int]],
    label_indices: Sequence[int],
    hyperparameters: HyperparametersConfig,
    options: RuntimeOptions,
    learning_rate: float,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train a sequence-classification model in place (cross-entropy over the classes); return its log and summary."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    examples = Dataset.from_dict(
        {
            "input_ids": [ids[: hyperparameters.max_seq_length] for ids in prompts_ids],
            "labels": list(label_indices),
        }
    )
    with tempfile.TemporaryDirectory(prefix="judgeforge-cls-") as scratch:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                **trainer_arguments(hyperparameters, options, len(examples), scratch, learning_rate)
            ),
            train_dataset=examples,
            data_collator=DataCollatorWithPadding(tokenizer),
            callbacks=list(callbacks),
        )
        result = trainer.train()
    return _training_log(trainer, result, sum(len(ids) for ids in examples["input_ids"]), 0)


def _training_log(trainer: Any, result: Any, tokens_per_epoch: int, dropped: int) -> dict[str, Any]:
    runtime = result.metrics["train_runtime"]
    # Early stopping may end training before the configured epochs.
    tokens = round(tokens_per_epoch * trainer.state.epoch)
    launch = current_launch()
    return {
        "history": trainer.state.log_history,
        **({"processes": _processes(trainer, runtime)} if launch else {}),
        "summary": {
            "train_examples": len(trainer.train_dataset),
            "dropped_over_max_seq_length": dropped,
            "optimizer_steps": trainer.state.global_step,
            "epochs_run": trainer.state.epoch,
            "train_runtime_s": runtime,
            "train_tokens": tokens,
            "train_tokens_per_second": tokens / runtime if runtime > 0 else None,
            "final_train_loss": result.training_loss,
        },
    }


def _processes(trainer: Any, runtime: float) -> list[dict[str, Any]]:
    """Return what each process of the launch trained, by rank (a collective: every process calls it)."""
    args = trainer.args
    record = {
        "rank": args.process_index,
        "local_rank": args.local_process_index,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "device": str(args.device),
        "backend": args.ddp_backend,
        "batches_per_epoch": len(trainer.get_train_dataloader()),
        "optimizer_steps": trainer.state.global_step,
        "train_runtime_s": runtime,
    }
    logger.info(
        "rank %d of %d (%s, %s): %d optimizer steps, %d batches per epoch",
        record["rank"],
        args.world_size,
        record["device"],
        record["backend"],
        record["optimizer_steps"],
        record["batches_per_epoch"],
    )
    return gathered(record)
