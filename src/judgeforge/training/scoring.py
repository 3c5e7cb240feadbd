"""Class logits from one forward pass: each class's first answer token, or a classification head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from judgeforge import progress
from judgeforge.training.formatting import prompt_and_answer_token_ids, prompt_token_ids

# Any prompt will do: chat templates and the plain-text suffix end the prompt the same way.
REFERENCE_PROMPT = "Is this example positive?"


class AnswerTokenError(ValueError):
    """The classes' answers cannot be told apart by their first token."""


def answer_token_ids(tokenizer: Any, answers: Sequence[str], chat: bool) -> list[int]:
    """Return the first token the model emits for each answer; they must be distinct."""
    prompt_ids = prompt_token_ids(tokenizer, REFERENCE_PROMPT, chat)
    first_tokens = []
    for answer in answers:
        full_ids = prompt_and_answer_token_ids(tokenizer, REFERENCE_PROMPT, answer, chat)
        if full_ids[: len(prompt_ids)] != prompt_ids or len(full_ids) <= len(prompt_ids):
            raise AnswerTokenError(
                f"answer {answer!r}: the tokenizer merges it with the end of the prompt, so it cannot be scored"
            )
        first_tokens.append(full_ids[len(prompt_ids)])
    if len(set(first_tokens)) != len(first_tokens):
        shared = sorted({a for a, t in zip(answers, first_tokens) if first_tokens.count(t) > 1})
        raise AnswerTokenError(
            f"answers {shared} start with the same token, so one forward pass cannot tell them apart "
            "(use at most 10 classes, whose keys 0-9 are single tokens)"
        )
    return first_tokens


@torch.inference_mode()
def answer_logits(
    model: Any,
    prompts_ids: Sequence[list[int]],
    class_token_ids: Sequence[int],
    pad_token_id: int,
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """Return an (n_prompts, n_classes) array: the class tokens' logits at the answer position."""
    device = next(model.parameters()).device
    class_ids = torch.tensor(list(class_token_ids), device=device)

    def batch_logits(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # Positions count real tokens only, so a padded prompt scores exactly as it would alone.
        position_ids = (attention_mask.cumsum(dim=-1) - 1).clamp(min=0)
        logits = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=1,
        ).logits[:, -1, :]
        return logits.index_select(dim=-1, index=class_ids)

    # Keep the end of an over-long prompt: the answer position must stay in view.
    clipped = [ids[-max_length:] for ids in prompts_ids]
    return _batched(
        model, clipped, len(class_ids), pad_token_id, batch_size, batch_logits, pad_left=True
    )


@torch.inference_mode()
def classifier_logits(
    model: Any,
    prompts_ids: Sequence[list[int]],
    pad_token_id: int,
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """Return an (n_prompts, n_classes) array: a sequence-classification model's logits.

    Padding goes on the right, where it changes no real token's position (absolute position
    embeddings of encoders included); the head reads the last real token (decoders) or the first.
    """
    clipped = [ids[:max_length] for ids in prompts_ids]
    return _batched(
        model,
        clipped,
        model.config.num_labels,
        pad_token_id,
        batch_size,
        lambda input_ids, attention_mask: (
            model(input_ids=input_ids, attention_mask=attention_mask).logits
        ),
        pad_left=False,
    )


@torch.inference_mode()
def mean_pooled_vectors(
    model: Any,
    prompts_ids: Sequence[list[int]],
    pad_token_id: int,
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """Return an (n_prompts, hidden size) array: a MeanPooledClassifier's pooled encoder states."""
    clipped = [ids[:max_length] for ids in prompts_ids]
    return _batched(
        model,
        clipped,
        model.config.hidden_size,
        pad_token_id,
        batch_size,
        model.pool,
        pad_left=False,
    )


def _batched(
    model: Any,
    prompts_ids: list[list[int]],
    n_classes: int,
    pad_token_id: int,
    batch_size: int,
    batch_logits: Any,
    pad_left: bool,
) -> np.ndarray:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([len(ids) for ids in prompts_ids])  # similar lengths per batch, less padding
    logits = np.zeros((len(prompts_ids), n_classes), dtype=np.float64)
    with progress.stage("scoring", len(order), unit="rows") as scoring:
        for start in range(0, len(order), batch_size):
            batch_index = order[start : start + batch_size]
            input_ids, attention_mask = _padded(
                [prompts_ids[i] for i in batch_index], pad_token_id, device, pad_left
            )
            logits[batch_index] = batch_logits(input_ids, attention_mask).float().cpu().numpy()
            scoring.advance(len(batch_index), tokens=int(attention_mask.sum()))
    model.train(was_training)
    return logits


def _padded(
    sequences: list[list[int]], pad_token_id: int, device: torch.device, pad_left: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        columns = slice(width - len(ids), width) if pad_left else slice(0, len(ids))
        input_ids[row, columns] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, columns] = 1
    return input_ids.to(device), attention_mask.to(device)
