"""The OpenAI wire format: request bodies, stored real-format responses, error classification."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from pathlib import Path

import pytest

from judgeforge.llm import LLMRequest
from judgeforge.llm.engine import PermanentError, TransientError
from judgeforge.llm.errors import ProviderRejected
from judgeforge.llm.openai_compatible import (
    azure_endpoint,
    chat_payload,
    http_error,
    openai_endpoint,
    parse_chat_completion,
    retry_after_seconds,
    strict_json_schema,
)

PAYLOADS = Path(__file__).parents[1] / "support" / "payloads"
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}, "label": {"enum": ["a", "b"]}}}


def test_official_openai_gets_max_completion_tokens_and_a_strict_schema():
    request = LLMRequest.from_prompt("hi", system="sys", max_tokens=9, seed=4, json_schema=SCHEMA,
                                     schema_name="example")
    body = chat_payload("gpt-4.1-mini", request, openai_endpoint(None, "sk-x"))
    assert body["model"] == "gpt-4.1-mini" and body["max_completion_tokens"] == 9 and body["seed"] == 4
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    schema = body["response_format"]["json_schema"]
    assert schema["name"] == "example" and schema["strict"] is True
    assert schema["schema"]["additionalProperties"] is False
    assert schema["schema"]["required"] == ["text", "label"]


def test_self_hosted_servers_get_max_tokens():
    body = chat_payload("m", LLMRequest.from_prompt("hi", max_tokens=3), openai_endpoint("http://h/v1", None))
    assert body["max_tokens"] == 3 and "max_completion_tokens" not in body and "seed" not in body


def test_strict_schema_closes_nested_objects():
    nested = {"type": "object", "properties": {"inner": {"type": "object", "properties": {"x": {}}}},
              "$defs": {"D": {"type": "object", "properties": {"y": {}}}}}
    strict = strict_json_schema(nested)
    assert strict["properties"]["inner"]["additionalProperties"] is False
    assert strict["$defs"]["D"]["required"] == ["y"]


def test_stored_chat_completion_is_parsed():
    parsed = parse_chat_completion(json.loads((PAYLOADS / "openai_chat_completion.json").read_text()))
    assert json.loads(parsed.text)["label"] == "positive"
    assert (parsed.input_tokens, parsed.output_tokens, parsed.finish_reason) == (112, 19, "stop")


def test_stored_refusal_is_a_permanent_error():
    with pytest.raises(PermanentError, match="refused"):
        parse_chat_completion(json.loads((PAYLOADS / "openai_chat_completion_refusal.json").read_text()))


def test_retry_after_in_seconds_milliseconds_or_http_date():
    assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
    assert retry_after_seconds({"retry-after-ms": "150", "retry-after": "9"}) == 0.15
    assert 8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


@pytest.mark.parametrize(
    ("status", "kind", "throttled"),
    [(429, TransientError, True), (503, TransientError, True), (500, TransientError, False),
     (408, TransientError, False), (400, PermanentError, None), (401, ProviderRejected, None),
     (403, ProviderRejected, None), (404, ProviderRejected, None)],
)
def test_status_classification(status, kind, throttled):
    error = http_error(status, {"retry-after": "1"}, b'{"error": {"message": "m"}}')
    assert isinstance(error, kind) and f"HTTP {status}: m" in str(error)
    if throttled is not None:
        assert error.throttled is throttled and error.retry_after == 1.0


def test_azure_endpoint_routes_by_deployment():
    endpoint = azure_endpoint("https://r.openai.azure.com/", "chat-dep", "emb-dep", "2024-10-21", "key-123456")
    assert endpoint.chat_url == "https://r.openai.azure.com/openai/deployments/chat-dep/chat/completions?api-version=2024-10-21"
    assert endpoint.embeddings_url.endswith("/deployments/emb-dep/embeddings?api-version=2024-10-21")
    assert "key-123456" not in repr(endpoint)


def test_a_503_without_a_wait_is_an_outage_not_throttling():
    assert http_error(503, {}, b"{}").throttled is False
