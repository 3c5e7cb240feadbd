"""Stop texts: sent to every provider, part of the cache key only when set."""

from __future__ import annotations

from judgeforge.llm import LLMRequest
from judgeforge.llm.gemini import gemini_request
from judgeforge.llm.openai_compatible import chat_payload, openai_endpoint


def test_stop_texts_reach_the_wire_and_leave_other_cache_keys_as_they_were() -> None:
    plain = LLMRequest.from_prompt("hi")
    stopped = LLMRequest.from_prompt("hi", stop=["\n###"])
    assert "stop" not in plain.canonical()
    assert stopped.stop == ("\n###",) and stopped.canonical()["stop"] == ["\n###"]
    endpoint = openai_endpoint("http://127.0.0.1:9/v1", "sk-test")
    assert "stop" not in chat_payload("m", plain, endpoint)
    assert chat_payload("m", stopped, endpoint)["stop"] == ["\n###"]
    assert gemini_request(stopped)[1].stop_sequences == ["\n###"]
    assert gemini_request(plain)[1].stop_sequences is None
