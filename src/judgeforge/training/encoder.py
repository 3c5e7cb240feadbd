"""The encoder judge's model: an encoder's token states, mean-pooled over the attention mask, into a
linear classification head.

Sentence encoders such as MiniLM (all-MiniLM-L6-v2) were trained so that the mean of their token
states is the sentence vector; their [CLS] pooler, which transformers' sequence-classification
models read, was never trained for that. Measured on 50 real movie-review rows (BENCHMARKS.md):
the [CLS]-pooler encoder judge reached 0.367 macro-F1 where logistic regression on the mean-pooled
vectors reached 0.630.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.linear_model import LogisticRegression
from transformers.modeling_outputs import SequenceClassifierOutput

# Saved next to the encoder's own weights; the encoder's config.json carries num_labels.
HEAD_FILE = "classification_head.safetensors"
ABSENT_CLASS_BIAS = -10.0


class MeanPooledClassifier(torch.nn.Module):
    """An encoder whose mask-weighted mean token state feeds a linear layer over the classes."""

    def __init__(self, encoder: Any, labels: int):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config
        self.config.num_labels = labels
        self.head = torch.nn.Linear(encoder.config.hidden_size, labels, dtype=encoder.dtype)
        # A zero head starts at uniform probabilities and is the same whatever the random state.
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> SequenceClassifierOutput:
        """Return the class logits (and the cross-entropy loss when labels are given)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        logits = self.head(self.pool(input_ids, attention_mask))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return each row's token states averaged over its real (unmasked) tokens."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def probe_head(self, vectors: np.ndarray, class_indices: np.ndarray, seed: int) -> None:
        """Set the head to a logistic regression fitted on the frozen encoder's pooled vectors.

        Fine-tuning then starts from a linear probe instead of a blank head (LP-FT, Kumar et al.
        2022): a blank head's first gradients are noise that distorts the pretrained encoder, which
        made the 200-row movie-review judge collapse to one class (BENCHMARKS.md).
        """
        labels = self.head.out_features
        if len(np.unique(class_indices)) < 2:
            return  # one class: nothing to tell apart, the blank head stays
        probe = LogisticRegression(max_iter=1000, random_state=seed).fit(vectors, class_indices)
        coef, intercept = probe.coef_, probe.intercept_
        weight = np.zeros((labels, vectors.shape[1]))
        # A class absent from the rows never wins.
        bias = np.full(labels, ABSENT_CLASS_BIAS)
        if len(probe.classes_) == 2:
            # Binary: scikit-learn keeps one logit z; softmax over (-z/2, z/2) gives sigmoid(z).
            for sign, label in ((-0.5, probe.classes_[0]), (0.5, probe.classes_[1])):
                weight[label], bias[label] = sign * coef[0], sign * intercept[0]
        else:
            weight[probe.classes_], bias[probe.classes_] = coef, intercept
        with torch.no_grad():
            self.head.weight.copy_(torch.from_numpy(weight))
            self.head.bias.copy_(torch.from_numpy(bias))

    def save_pretrained(self, directory: str | Path) -> None:
        """Write the encoder as a transformers model and the head next to it."""
        self.encoder.save_pretrained(directory)
        save_file(
            {name: tensor.contiguous() for name, tensor in self.head.state_dict().items()},
            str(Path(directory) / HEAD_FILE),
        )

    @classmethod
    def from_pretrained(cls, source: str, labels: int, dtype: torch.dtype) -> MeanPooledClassifier:
        """Return the encoder at `source` with its saved head, or a new zero head when it has none."""
        from transformers import AutoModel

        model = cls(AutoModel.from_pretrained(source, dtype=dtype), labels)
        saved_head = Path(source) / HEAD_FILE
        if saved_head.is_file():
            model.head.load_state_dict(load_file(str(saved_head)))
        return model
