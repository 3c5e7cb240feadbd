"""The local provider on the real SmolLM2 and MiniLM: a few tiny prompts, no network."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from judgeforge.llm import LLMRequest, build_llm_client
from judgeforge.llm.local import answer_prefix, json_skeleton


@pytest.fixture(scope="module")
def local_client(tmp_path_factory):
    client = build_llm_client("local", cache_path=tmp_path_factory.mktemp("local") / "c.sqlite",
                              show_progress=False, local_batch_size=4)
    yield client
    client.close()


def test_batched_generation_answers_each_prompt(local_client):
    requests = [
        LLMRequest.from_prompt("What is the capital of France? Answer in one word.", max_tokens=8),
        LLMRequest.from_prompt("Say hello.", max_tokens=8),
        LLMRequest.from_prompt("Name a colour.", system="Answer with a single word.", max_tokens=8),
    ]
    responses = asyncio.run(local_client.generate(requests))
    assert all(r.ok and r.text for r in responses)
    assert "paris" in responses[0].text.lower()
    assert all(0 < r.output_tokens <= 8 and r.input_tokens > 10 for r in responses)
    assert {r.finish_reason for r in responses} <= {"stop", "length"}
    assert local_client.usage.cost_usd == 0 and local_client.usage.priced


def test_greedy_answer_does_not_depend_on_batch_padding(local_client):
    short = LLMRequest.from_prompt("What is 2 + 2?", max_tokens=6)
    long = LLMRequest.from_prompt("Please explain in a few words what a cat is, briefly.", max_tokens=6)
    alone = local_client.chat.generate_batch([short])[0]
    padded = local_client.chat.generate_batch([long, short])[1]
    assert padded.text == alone.text


def test_rerun_is_served_from_cache(local_client):
    request = LLMRequest.from_prompt("Say yes.", max_tokens=4)
    first = asyncio.run(local_client.generate([request]))[0]
    second = asyncio.run(local_client.generate([request]))[0]
    assert not first.from_cache and second.from_cache and second.text == first.text


def test_local_embeddings_are_normalised_minilm_vectors(local_client):
    vectors = asyncio.run(local_client.embed(["a happy dog", "a joyful puppy", "quarterly tax filing"]))
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_structured_request_gets_an_example_shape_and_a_json_prefix():
    schema = {"type": "object", "properties": {"text": {"type": "string"}, "label": {"enum": ["yes", "no"]},
                                               "score": {"type": "integer"}}}
    assert json_skeleton(schema) == {"text": "...", "label": "yes|no", "score": 0}
    assert answer_prefix(LLMRequest.from_prompt("p", json_schema=schema)) == '{"text": "'
    assert answer_prefix(LLMRequest.from_prompt("p")) == ""


def test_structured_answer_from_the_real_model_is_a_json_object(local_client):
    schema = {"type": "object", "properties": {"text": {"type": "string"}}}
    request = LLMRequest.from_prompt("Write one sentence about tea.", json_schema=schema, max_tokens=60)
    [answer] = asyncio.run(local_client.generate([request]))
    assert answer.finish_reason == "stop" and isinstance(answer.json()["text"], str)


def test_a_json_answer_ends_where_its_object_closes(local_client):
    """The judge path: a JSON request stops at its closing brace, not at the token budget."""
    schema = {"type": "object", "properties": {"label": {"type": "string", "enum": ["0", "1"]},
                                               "rationale": {"type": "string"}}}
    request = LLMRequest.from_prompt(
        'Is "my parcel never came and nobody answers" a complaint? Answer 1 for yes, 0 for no.',
        system="Answer with JSON only.", json_schema=schema, max_tokens=400,
    )
    [answer] = asyncio.run(local_client.generate([request]))
    assert answer.finish_reason == "stop" and answer.output_tokens < 400
    assert set(answer.json()) >= {"label"}
