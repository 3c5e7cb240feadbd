"""Gemini: request building, parsing of stored real-format payloads, and a round trip through the SDK."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from google.genai import errors as genai_errors
from google.genai import types

from judgeforge.llm import LLMRequest, build_llm_client
from judgeforge.llm.engine import PermanentError, TransientError
from judgeforge.llm.errors import ProviderRejected
from judgeforge.llm.gemini import gemini_error, gemini_request, parse_gemini_response
from tests.support.openai_server import Reply

PAYLOADS = Path(__file__).parents[1] / "support" / "payloads"
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}, "label": {"type": "string"}}}


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / name).read_text())


def response(name: str) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate(payload(name))


def test_request_maps_system_turns_roles_and_structured_output():
    request = LLMRequest(
        messages=({"role": "system", "content": "be terse"}, {"role": "user", "content": "q1"},
                  {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}),
        temperature=0.3, max_tokens=50, seed=7, json_schema=SCHEMA,
    )
    contents, config = gemini_request(request)
    assert [(c.role, c.parts[0].text) for c in contents] == [("user", "q1"), ("model", "a1"), ("user", "q2")]
    assert config.system_instruction == "be terse"
    assert (config.temperature, config.max_output_tokens, config.seed) == (0.3, 50, 7)
    assert config.response_mime_type == "application/json" and config.response_json_schema == SCHEMA


def test_plain_request_asks_for_no_json():
    _, config = gemini_request(LLMRequest.from_prompt("hi"))
    assert config.response_mime_type is None and config.response_json_schema is None
    assert config.system_instruction is None


def test_structured_answer_counts_thinking_tokens_as_output():
    parsed = parse_gemini_response(response("gemini_generate_content_json.json"))
    assert json.loads(parsed.text) == {
        "text": "The refund arrived two weeks late and nobody answered my emails.", "label": "negative"}
    assert (parsed.input_tokens, parsed.output_tokens, parsed.finish_reason) == (87, 24 + 231, "stop")


def test_truncated_answer_reports_max_tokens():
    parsed = parse_gemini_response(response("gemini_generate_content_max_tokens.json"))
    assert parsed.finish_reason == "max_tokens" and parsed.text.startswith('{"text"')


def test_blocked_prompt_is_a_permanent_error_naming_the_reason():
    with pytest.raises(PermanentError, match="SAFETY"):
        parse_gemini_response(response("gemini_generate_content_blocked.json"))


def test_quota_error_is_throttling_that_honours_retry_info():
    error = gemini_error(genai_errors.ClientError(429, payload("gemini_error_429.json")))
    assert isinstance(error, TransientError) and error.throttled and error.retry_after == 17.0


def test_invalid_argument_is_permanent():
    error = gemini_error(genai_errors.ClientError(400, payload("gemini_error_400.json")))
    assert isinstance(error, PermanentError) and "INVALID_ARGUMENT" in str(error)


def test_round_trip_through_the_sdk_with_retry(server, cache_path):
    quota = payload("gemini_error_429.json")
    quota["error"]["details"][-1]["retryDelay"] = "0.2s"
    server.enqueue(Reply.raw(429, quota), Reply.raw(200, payload("gemini_generate_content_json.json")))
    client = build_llm_client("gemini", "gemini-2.5-flash", api_key="gm-test-key-123456", cache_path=cache_path,
                              base_url=server.root_url, show_progress=False)
    request = LLMRequest.from_prompt("write one", system="you write reviews", json_schema=SCHEMA, seed=3)
    [answer] = asyncio.run(client.generate([request]))
    assert answer.ok and answer.attempts == 2 and json.loads(answer.text)["label"] == "negative"
    first, second = server.requests
    assert second.received_at - first.received_at >= 0.2
    assert second.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert second.headers["x-goog-api-key"] == "gm-test-key-123456"
    body = second.body
    assert body["systemInstruction"]["parts"][0]["text"] == "you write reviews"
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["seed"] == 3
    client.close()


def test_a_bad_key_or_unknown_model_ends_the_run():
    bad_key = {"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                         "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}}
    refused = gemini_error(genai_errors.ClientError(400, bad_key), "gemini at http://127.0.0.1:1")
    assert isinstance(refused, ProviderRejected) and "the API key was refused" in str(refused)
    assert str(refused).startswith("gemini at http://127.0.0.1:1 answered HTTP 400: INVALID_ARGUMENT: API key not valid")
    missing = {"error": {"code": 404, "message": "models/gemini-9 is not found", "status": "NOT_FOUND"}}
    assert isinstance(gemini_error(genai_errors.ClientError(404, missing)), ProviderRejected)


def test_a_refused_key_stops_a_gemini_run(server, cache_path):
    server.refuse_status = 403
    client = build_llm_client("gemini", "gemini-2.5-flash", api_key="gm-test-key-123456", cache_path=cache_path,
                              base_url=server.root_url, show_progress=False, max_concurrent_requests=1)
    with pytest.raises(ProviderRejected, match="answered HTTP 403"):
        asyncio.run(client.generate([LLMRequest.from_prompt("a"), LLMRequest.from_prompt("b")]))
    assert len(server.requests) == 1
    client.close()
