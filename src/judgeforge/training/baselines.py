"""Baseline judges scored next to every fine-tuned judge: MiniLM sentence embeddings + logistic regression."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from judgeforge.llm.local import load_minilm
from judgeforge.training.formatting import FIELD_SEPARATOR, feature_template, render_prompt

EMBEDDING_BATCH_SIZE = 64


def embed_texts(texts: Sequence[str]) -> np.ndarray:
    """Return the embedded MiniLM's sentence vectors of `texts`."""
    return load_minilm().encode(
        list(texts), batch_size=EMBEDDING_BATCH_SIZE, convert_to_numpy=True, show_progress_bar=False
    )


def embed_features(rows: pd.DataFrame, prompt_template: str) -> np.ndarray:
    """Return the MiniLM sentence vectors of each row's template columns, joined as the encoder judge reads them."""
    model = load_minilm()
    template = feature_template(prompt_template, model.tokenizer.sep_token or FIELD_SEPARATOR)
    return embed_texts([render_prompt(template, row) for row in rows.to_dict(orient="records")])


def logistic_regression_probabilities(
    train_vectors: np.ndarray,
    train_labels: Sequence[str],
    test_vectors: np.ndarray,
    labels: Sequence[str],
    seed: int,
) -> np.ndarray:
    """Return (n_test, n_labels) probabilities of a logistic regression fitted on the train vectors.

    A class absent from the train rows gets probability 0.
    """
    classifier = LogisticRegression(max_iter=1000, random_state=seed)
    classifier.fit(train_vectors, list(train_labels))
    fitted = classifier.predict_proba(test_vectors)
    probabilities = np.zeros((len(test_vectors), len(labels)))
    for column, label in enumerate(classifier.classes_):
        probabilities[:, list(labels).index(label)] = fitted[:, column]
    return probabilities
