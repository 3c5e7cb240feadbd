"""The client's sync entry point (also inside a running loop) and the ask-until-valid loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from judgeforge.llm import ChatMessage, LLMClient, LLMRequest
from judgeforge.llm.asking import InvalidAnswer, ask_until_valid
from tests.support.openai_server import OpenAIServer, ReceivedRequest, Reply


def question(text: str) -> LLMRequest:
    return LLMRequest(messages=(ChatMessage("user", text),), max_tokens=20)


def echo(request: ReceivedRequest) -> Reply:
    return Reply.text(f"echo: {request.last_user_message}")


def test_generate_sync_works_from_plain_code_and_inside_a_running_loop(
    server: OpenAIServer, make_client: Callable[..., LLMClient]
) -> None:
    server.respond_with(echo)
    client = make_client()
    (plain,) = client.generate_sync([question("plain")])

    async def notebook_cell() -> list[str]:
        # a notebook runs cells inside an event loop: asyncio.run would refuse here
        return [response.text for response in client.generate_sync([question("in a loop")])]

    assert plain.text == "echo: plain"
    assert asyncio.run(notebook_cell()) == ["echo: in a loop"]


def test_only_rejected_answers_are_asked_again_naming_the_problem(
    server: OpenAIServer, make_client: Callable[..., LLMClient]
) -> None:
    server.respond_with(echo)

    def request(index: int, attempt: int, problem: str) -> LLMRequest:
        return question(f"q{index} attempt {attempt} {problem}".strip())

    def read(index: int, text: str) -> str:
        if index == 1 and "attempt 3" not in text:
            raise InvalidAnswer(f"not yet ({text})")
        return text

    outcomes = ask_until_valid(make_client(), 3, request, read, retries=2)
    assert [(o.value, o.attempts, o.problem) for o in outcomes] == [
        ("echo: q0 attempt 1", 1, ""),
        ("echo: q1 attempt 3 not yet (echo: q1 attempt 2 not yet (echo: q1 attempt 1))", 3, ""),
        ("echo: q2 attempt 1", 1, ""),
    ]
    asked = [r.last_user_message for r in server.requests]
    assert asked == [
        "q0 attempt 1",
        "q1 attempt 1",
        "q2 attempt 1",
        "q1 attempt 2 not yet (echo: q1 attempt 1)",
        "q1 attempt 3 not yet (echo: q1 attempt 2 not yet (echo: q1 attempt 1))",
    ]


def test_an_answer_still_rejected_after_the_retries_reports_why(
    server: OpenAIServer, make_client: Callable[..., LLMClient]
) -> None:
    server.respond_with(lambda request: Reply.text("nonsense"))

    def read(index: int, text: str) -> str:
        raise InvalidAnswer(f"{text!r} is not an answer")

    (outcome,) = ask_until_valid(
        make_client(), 1, lambda _, attempt, problem: question(f"q {attempt}"), read, retries=1
    )
    assert (outcome.value, outcome.attempts, outcome.problem) == (
        None,
        2,
        "'nonsense' is not an answer",
    )
    assert len(server.requests) == 2
