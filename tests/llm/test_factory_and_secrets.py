"""Client construction: one clear error per bad setting, keys resolved, secrets never leaked."""

from __future__ import annotations

import asyncio
import logging

import pytest

from judgeforge.llm import LLMConfigError, LLMRequest, build_llm_client
from judgeforge.llm.errors import ProviderRejected
from judgeforge.llm.openai_compatible import OpenAICompatibleChat
from tests.llm.conftest import TEST_KEY
from tests.support.openai_server import Reply


@pytest.mark.parametrize(
    ("provider", "names"),
    [("openai", "OPENAI_API_KEY"), ("gemini", "GOOGLE_API_KEY or GEMINI_API_KEY")],
)
def test_missing_key_is_one_clear_error_before_any_request(provider, names, cache_path):
    with pytest.raises(LLMConfigError, match=f"no API key for provider '{provider}': set {names}"):
        build_llm_client(provider, cache_path=cache_path)


def test_azure_needs_its_resource_url_then_its_key(cache_path):
    with pytest.raises(LLMConfigError, match="AZURE_OPENAI_ENDPOINT"):
        build_llm_client("azure", "gpt-4o-dep", cache_path=cache_path)
    with pytest.raises(LLMConfigError, match="AZURE_OPENAI_API_KEY"):
        build_llm_client("azure", "gpt-4o-dep", base_url="https://r.openai.azure.com", cache_path=cache_path)


def test_vegas_needs_a_base_url_and_a_key(cache_path):
    with pytest.raises(LLMConfigError, match="'vegas' is an OpenAI-compatible gateway.*set base_url"):
        build_llm_client("vegas", "m", api_key="k" * 10, cache_path=cache_path)
    with pytest.raises(LLMConfigError, match="VEGAS_API_KEY"):
        build_llm_client("vegas", "m", base_url="https://vegas.example/v1", cache_path=cache_path)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"provider": "anthropic"}, "unknown LLM provider 'anthropic'"),
        ({"provider": "local", "max_concurrent_requests": 0}, "max_concurrent_requests must be >= 1"),
        ({"provider": "local", "request_timeout_seconds": 0}, "request_timeout_seconds must be > 0"),
        ({"provider": "local", "max_retries": -1}, "max_retries must be >= 0"),
        ({"provider": "local", "base_url": "http://x"}, "takes no base_url"),
        ({"provider": "local", "embedding_model": "text-embedding-3-small"}, "embeds with all-MiniLM"),
        ({"provider": "openai", "api_key": "k" * 10, "deployment": "d"}, "deployment is an Azure setting"),
        ({"provider": "vegas", "base_url": "http://v", "api_key": "k" * 10}, "has no default model"),
        ({"provider": "local", "prices": {"m": {"input": 1}}}, r"price_table\['m'\] must be"),
    ],
)
def test_bad_settings_fail_with_a_line_naming_the_fix(arguments, message, cache_path):
    with pytest.raises(LLMConfigError, match=message):
        build_llm_client(cache_path=cache_path, **arguments)


def test_key_comes_from_credentials_flat_or_nested_then_environment(server, cache_path, monkeypatch):
    for credentials in ({"api_key": "sk-flat-123456"}, {"openai": {"api_key": "sk-nested-123456"}}):
        client = build_llm_client("openai", "m", credentials=credentials, cache_path=cache_path)
        assert isinstance(client.chat, OpenAICompatibleChat)
        client.close()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-123456")
    client = build_llm_client("openai", "m", base_url=server.base_url, cache_path=cache_path,
                              show_progress=False)
    asyncio.run(client.generate([LLMRequest.from_prompt("hi")]))
    assert server.requests[0].headers["Authorization"] == "Bearer sk-env-123456"
    client.close()


def test_self_hosted_openai_compatible_server_needs_no_key(server, cache_path):
    client = build_llm_client("openai", "m", base_url=server.base_url, cache_path=cache_path,
                              show_progress=False)
    [response] = asyncio.run(client.generate([LLMRequest.from_prompt("hi")]))
    assert response.ok and "Authorization" not in server.requests[0].headers
    client.close()


def test_azure_sends_deployment_api_version_and_api_key_header(server, cache_path):
    client = build_llm_client("azure", deployment="my-dep", base_url=server.root_url + "/",
                              api_key=TEST_KEY, api_version="2024-10-21", cache_path=cache_path,
                              show_progress=False)
    [response] = asyncio.run(client.generate([LLMRequest.from_prompt("hi", max_tokens=5)]))
    assert response.ok and client.model == "my-dep"
    [received] = server.requests
    assert received.path == "/openai/deployments/my-dep/chat/completions"
    assert received.query == {"api-version": "2024-10-21"}
    assert received.headers["api-key"] == TEST_KEY and "Authorization" not in received.headers
    assert received.body["max_completion_tokens"] == 5 and "model" not in received.body
    client.close()


def test_secrets_never_reach_responses_errors_logs_cache_or_repr(server, make_client, cache_path, caplog):
    def echo_auth(request):
        header = request.headers.get("Authorization", "")
        if request.last_user_message == "fail":
            return Reply.error(400, f"invalid key {header}")
        if request.last_user_message == "refuse":
            return Reply.error(401, f"invalid key {header}")
        return Reply.text(f"you sent {header}")

    server.respond_with(echo_auth)
    client = make_client()
    with caplog.at_level(logging.DEBUG):
        ok, failed = asyncio.run(client.generate([LLMRequest.from_prompt("hi"), LLMRequest.from_prompt("fail")]))
    assert server.requests[0].headers["Authorization"] == f"Bearer {TEST_KEY}"
    assert ok.text == "you sent Bearer ***"
    assert "***" in failed.error and TEST_KEY not in failed.error
    with pytest.raises(ProviderRejected) as refused:
        asyncio.run(client.generate([LLMRequest.from_prompt("refuse")]))
    assert "Bearer ***" in str(refused.value) and TEST_KEY not in str(refused.value)
    assert TEST_KEY not in caplog.text
    assert TEST_KEY not in repr(client) and TEST_KEY not in repr(client.chat)
    assert client.redact(f"prompt with {TEST_KEY} inside") == "prompt with *** inside"
    client.close()
    assert TEST_KEY.encode() not in b"".join(p.read_bytes() for p in cache_path.parent.glob("*.sqlite*"))
