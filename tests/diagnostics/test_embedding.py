"""Embedding diagnostic texts: chunks, de-duplication, normalisation, and the real clients."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from judgeforge.diagnostics import embedding
from judgeforge.diagnostics.embedding import embed_texts
from judgeforge.llm import build_llm_client
from judgeforge.llm.client import run_coroutine
from tests.diagnostics.fakes import TableEmbedder
from tests.support.openai_server import OpenAIServer


def test_each_distinct_text_is_embedded_once_in_chunks_and_rows_come_back_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embedding, "EMBED_CHUNK_SIZE", 2)
    embedder = TableEmbedder({"a": np.array([3.0, 4.0]), "b": np.array([0.0, 2.0]), "c": np.array([1.0, 0.0])})
    vectors = embed_texts(embedder, ["a", "b", "a", "c", "b"])
    assert embedder.calls == [["a", "b"], ["c"]]
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0, 1], [0.6, 0.8], [1, 0], [0, 1]], atol=1e-7)


def test_no_texts_means_no_call() -> None:
    embedder = TableEmbedder({})
    assert embed_texts(embedder, []).shape == (0, 0)
    assert embedder.calls == []


def test_a_client_answering_the_wrong_number_of_rows_is_reported() -> None:
    class Short:
        async def embed(self, texts: list[str]) -> np.ndarray:
            return np.ones((len(texts) - 1, 4), dtype=np.float32)

    with pytest.raises(ValueError, match=r"shape \(1, 4\) for 2 texts"):
        embed_texts(Short(), ["x", "y"])


def test_coroutines_also_run_from_inside_a_running_loop() -> None:
    async def inside() -> np.ndarray:
        return embed_texts(TableEmbedder({"a": np.array([2.0, 0.0])}), ["a"])

    np.testing.assert_array_equal(asyncio.run(inside()), [[1.0, 0.0]])
    assert run_coroutine(asyncio.sleep(0, result=5)) == 5


def test_real_minilm_embeds_similar_sentences_closer_and_a_rerun_hits_the_cache(tmp_path: Path) -> None:
    texts = [
        "My parcel arrived broken and I want a refund.",
        "The package came damaged, please refund me.",
        "What time does your shop open on Sundays?",
    ]
    with build_llm_client("local", embedding_model="all-MiniLM-L6-v2", cache_path=tmp_path / "cache.sqlite", show_progress=False) as client:
        vectors = embed_texts(client, texts)
        again = embed_texts(client, texts)
        assert client.usage.cache_hits == len(texts)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarities = vectors @ vectors.T
    assert similarities[0, 1] > similarities[0, 2] + 0.3
    np.testing.assert_array_equal(vectors, again)


def test_openai_embeddings_through_the_loopback_server_are_sent_once(tmp_path: Path) -> None:
    texts = [f"text number {i}" for i in range(300)] + ["text number 0"]
    with OpenAIServer(embedding_dim=16) as server, build_llm_client(
        "openai", "test-model", embedding_model="text-embedding-3-small", base_url=server.base_url,
        api_key="sk-test-0123456789abcdef", cache_path=tmp_path / "cache.sqlite", show_progress=False,
    ) as client:
        vectors = embed_texts(client, texts)
        requests_first_run = server.stats()["requests"]
        again = embed_texts(client, texts)
        assert server.stats()["requests"] == requests_first_run
    assert requests_first_run >= 1 and all(r.path.endswith("/embeddings") for r in server.requests)
    assert sum(len(r.body["input"]) for r in server.requests) == 300
    assert vectors.shape == (301, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[-1])
    np.testing.assert_array_equal(vectors, again)
