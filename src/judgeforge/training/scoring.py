"""Class logits from one forward pass: each class's first answer token, or a classification head.

A causal judge's rows share the tokens its template puts before the first field (the chat's system
message, the template's opening words): those are run once per call and their keys and values
reused by every row that starts with them, so a row pays for its own tokens only. Rows are
left-padded after that shared prefix and positions count real tokens only, so a row sees the
positions it would alone (SDPA's sums can still differ in the last bits with the padding on
64-wide heads: BENCHMARKS.md, issue 15, "Fourth round: decoding attention").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from judgeforge import progress
from judgeforge.training.formatting import (
    ChatPrompt,
    prompt_and_answer_token_ids,
    prompt_token_ids,
)

# Any prompt will do: chat templates and the plain-text suffix end the prompt the same way.
REFERENCE_PROMPT = "Is this example positive?"


class AnswerTokenError(ValueError):
    """The classes' answers cannot be told apart by their first token."""


def answer_token_ids(tokenizer: Any, answers: Sequence[str], chat: ChatPrompt | None) -> list[int]:
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
    prefix_ids: Sequence[int] = (),
) -> np.ndarray:
    """Return an (n_prompts, n_classes) array: the class tokens' logits at the answer position."""
    class_ids = torch.tensor(list(class_token_ids), device=next(model.parameters()).device)
    # Keep the end of an over-long prompt: the answer position must stay in view.
    clipped = [ids[-max_length:] for ids in prompts_ids]
    return _causal_batched(
        model,
        clipped,
        prefix_ids,
        len(class_ids),
        pad_token_id,
        batch_size,
        lambda outputs: outputs.logits[:, -1, :].index_select(dim=-1, index=class_ids),
        logits_to_keep=1,
    )


@torch.inference_mode()
def causal_classifier_logits(
    model: Any,
    prompts_ids: Sequence[list[int]],
    pad_token_id: int,
    max_length: int,
    batch_size: int,
    prefix_ids: Sequence[int] = (),
) -> np.ndarray:
    """Return an (n_prompts, n_classes) array: a causal LM's sequence-classification logits (its last token)."""
    clipped = [ids[:max_length] for ids in prompts_ids]
    return _causal_batched(
        model,
        clipped,
        prefix_ids,
        model.config.num_labels,
        pad_token_id,
        batch_size,
        lambda outputs: outputs.logits,
    )


def _causal_batched(
    model: Any,
    prompts_ids: list[list[int]],
    prefix_ids: Sequence[int],
    n_classes: int,
    pad_token_id: int,
    batch_size: int,
    read: Any,
    **forward: Any,
) -> np.ndarray:
    """Return `read(outputs)` of every prompt, the shared prefix's keys and values computed once."""
    prefix = list(prefix_ids)
    shares = np.array(
        [len(ids) > len(prefix) > 0 and ids[: len(prefix)] == prefix for ids in prompts_ids],
        dtype=bool,
    )
    logits = np.zeros((len(prompts_ids), n_classes), dtype=np.float64)
    was_training = model.training
    model.eval()
    prefix_states = _prefix_states(model, prefix) if shares.any() else []
    for group, skip in ((np.flatnonzero(shares), len(prefix)), (np.flatnonzero(~shares), 0)):
        if len(group) == 0:
            continue

        def batch_logits(
            input_ids: torch.Tensor, attention_mask: torch.Tensor, skip: int = skip
        ) -> torch.Tensor:
            rows = input_ids.shape[0]
            past = None
            if skip:
                attention_mask = torch.cat(
                    [attention_mask.new_ones((rows, skip)), attention_mask], dim=-1
                )
                past = DynamicCache(
                    [
                        (k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
                        for k, v in prefix_states
                    ]
                )
            # Positions count real tokens only, so a padded prompt sees the positions it would alone.
            position_ids = (attention_mask.cumsum(dim=-1) - 1).clamp(min=0)[:, skip:]
            return read(
                model(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    cache=past,
                    use_cache=bool(skip),
                    **forward,
                )
            )

        logits[group] = _batched(
            model,
            [prompts_ids[i][skip:] for i in group],
            n_classes,
            pad_token_id,
            batch_size,
            batch_logits,
            pad_left=True,
        )
    model.train(was_training)
    return logits


def _prefix_states(model: Any, prefix: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Return each layer's keys and values of the prefix (a batch of one)."""
    device = next(model.parameters()).device
    outputs = model(input_ids=torch.tensor([prefix], device=device), use_cache=True)
    return [(layer.keys, layer.values) for layer in outputs.cache.layers]


@torch.inference_mode()
def classifier_logits(
    model: Any,
    prompts_ids: Sequence[list[int]],
    pad_token_id: int,
    max_length: int,
    batch_size: int,
) -> np.ndarray:
    """Return an (n_prompts, n_classes) array: an encoder classifier's logits.

    Padding goes on the right, where it changes no real token's position (absolute position
    embeddings included).
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
