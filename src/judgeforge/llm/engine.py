"""The request engine shared by every remote provider: concurrency, pacing, retries, run-ending failures."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from judgeforge import progress
from judgeforge.llm.errors import ProviderError, ProviderUnreachable
from judgeforge.llm.pacing import RateGovernor
from judgeforge.llm.secrets import Redactor
from judgeforge.llm.types import Usage

logger = logging.getLogger(__name__)

Job = TypeVar("Job")
Result = TypeVar("Result", bound="Metered")


class Metered(Protocol):
    """A provider answer that says how many tokens it cost."""

    input_tokens: int
    output_tokens: int


class TransientError(Exception):
    """A failure worth retrying: throttling, a 5xx, a timeout, a dropped connection, a garbled body.

    `unreachable` marks a connection that could not be opened at all (refused, no such host):
    a streak of those ends the run (EngineSettings.max_connection_failures).
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        throttled: bool = False,
        unreachable: bool = False,
    ):
        super().__init__(message)
        self.retry_after = retry_after
        self.throttled = throttled
        self.unreachable = unreachable


class PermanentError(Exception):
    """A failure of one request that retrying cannot fix (a bad request, a refused answer)."""


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """How hard the engine pushes an endpoint and how patiently it retries.

    `request_timeout_seconds` is enforced by each transport with its own timer (aiohttp's
    ClientTimeout, google-genai's HttpOptions), which is cheaper than wrapping every call in a task.
    Retries: throttled attempts (429, a 503 naming a wait) are retried until
    `retry_budget_seconds` have passed since the request's first attempt; other transient
    failures at most `max_retries` times.
    """

    max_concurrent_requests: int = 16
    request_timeout_seconds: float = 120.0
    max_retries: int = 6
    retry_budget_seconds: float = 300.0
    backoff_base_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    max_connection_failures: int = 10
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    adaptive_concurrency: bool = True
    show_progress: bool = True
    progress_label: str = "LLM"


@dataclass(frozen=True, slots=True)
class Outcome(Generic[Result]):
    """What became of one job: its result, or the last error once retries ran out."""

    result: Result | None
    error: str | None
    attempts: int


class RequestEngine:
    """Runs jobs against a remote endpoint within the settings, accounting retries into `usage`.

    A ProviderError (refused key, unknown model, unreachable endpoint) stops the whole run:
    nothing more is sent, requests already sent are awaited (the provider bills them, so their
    answers are handed to `on_outcome` and cached), jobs not yet sent are cancelled, and the
    error is raised once.
    """

    def __init__(self, settings: EngineSettings, usage: Usage, redact: Redactor) -> None:
        self.settings = settings
        self.usage = usage
        self.redact = redact
        self.governor = RateGovernor(
            requests_per_second=_per_second(settings.requests_per_minute),
            tokens_per_second=_per_second(settings.tokens_per_minute),
            learn=settings.adaptive_concurrency,
        )
        self.in_flight = 0
        self.peak_in_flight = 0
        self._slots = asyncio.Semaphore(settings.max_concurrent_requests)
        self._slots_loop: asyncio.AbstractEventLoop | None = None
        self._connection_failures = 0
        self._halted = False
        self._sent: set[asyncio.Future[object]] = set()  # jobs whose request is out or being stored

    async def run(
        self,
        jobs: Sequence[Job],
        call: Callable[[Job], Awaitable[Result]],
        on_outcome: Callable[[int, Outcome[Result]], Awaitable[None] | None],
        tokens: Callable[[Job], int] | None = None,
    ) -> list[Outcome[Result]]:
        """Run every job; `on_outcome` sees each one as soon as it is final (to persist it).

        When `on_outcome` returns an awaitable (the answer's commit to the cache), a successful
        job keeps its concurrency slot until it is done: a request counts as in flight until
        its answer is stored, so a killed process loses at most one answer per slot.
        `tokens` estimates a job's tokens, for pacing by `tokens_per_minute`.
        """
        self._bind_slots(asyncio.get_running_loop())
        self._connection_failures = 0
        self._halted = False

        async def run_indexed(index: int, job: Job) -> Outcome[Result]:
            outcome = await self._run_one(job, call, tokens(job) if tokens else 0)
            cost_before = self.usage.cost_usd
            try:  # a successful outcome comes back still holding its slot
                stored = on_outcome(index, outcome)
                if stored is not None:
                    await stored
            finally:
                if outcome.result is not None:
                    self._slots.release()
                self._sent.discard(asyncio.current_task())  # type: ignore[arg-type]
            answer = outcome.result
            shown.advance(
                rejected=int(answer is None),
                cost_usd=self.usage.cost_usd - cost_before,
                tokens=answer.input_tokens + answer.output_tokens if answer is not None else 0,
            )
            return outcome

        with progress.stage(
            self.settings.progress_label, len(jobs), enabled=self.settings.show_progress
        ) as shown:
            tasks = [asyncio.ensure_future(run_indexed(i, j)) for i, j in enumerate(jobs)]
            try:
                if tasks:
                    await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                failed = next((task for task in tasks if _raised(task)), None)
                if failed is None:
                    return [task.result() for task in tasks]
                await self._settle_sent(tasks)
                raise failed.exception()  # type: ignore[misc]
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _settle_sent(self, tasks: Sequence[asyncio.Future[Outcome[Result]]]) -> None:
        """Cancel the jobs not sent yet; wait for those already sent, so their answers get stored.

        A request out on the wire is billed whether or not we read its answer; each is bounded
        by the request timeout, and a failure now ends it without a retry.
        """
        self._halted = True
        sent = [task for task in tasks if task in self._sent and not task.done()]
        for task in tasks:
            if task not in self._sent:
                task.cancel()
        if sent:
            logger.info("run ending: storing the answers of %d requests already sent", len(sent))
            await asyncio.gather(*sent, return_exceptions=True)

    async def _run_one(
        self, job: Job, call: Callable[[Job], Awaitable[Result]], tokens: int
    ) -> Outcome[Result]:
        """One job with retries; raises only ProviderError (the run cannot go on).

        A hand-written loop rather than tenacity: tenacity inspects the callable on every call,
        which cost ~0.1 ms per request, a measurable share of the budget at 1,000+ requests/s.
        """
        loop = asyncio.get_running_loop()
        first_try = loop.time()
        attempt = failures = 0
        while True:
            attempt += 1
            try:
                result = await self._attempt(job, call, tokens)
                return Outcome(result=result, error=None, attempts=attempt)
            except TransientError as error:
                if self._halted:
                    raise asyncio.CancelledError from None  # the run is ending: no retry
                wait = self._backoff(attempt, error)
                if error.throttled:
                    gave_up = loop.time() + wait - first_try > self.settings.retry_budget_seconds
                else:
                    failures += 1
                    gave_up = failures > self.settings.max_retries
                if gave_up:
                    return Outcome(result=None, error=self._describe(error), attempts=attempt)
                self.usage.retries += 1
                logger.debug("retrying after %s", self._describe(error))
                await asyncio.sleep(wait)
            except PermanentError as error:
                return Outcome(result=None, error=self._describe(error), attempts=attempt)
            except ProviderError as error:
                self._halted = True  # before any request woken by the freed slot can start
                raise type(error)(self.redact(str(error))) from None
            except Exception as error:  # noqa: BLE001 - one broken answer must not abort the batch
                logger.warning("unexpected failure: %s", self._describe(error))
                return Outcome(result=None, error=self._describe(error), attempts=attempt)

    async def _attempt(
        self, job: Job, call: Callable[[Job], Awaitable[Result]], tokens: int
    ) -> Result:
        """One try under a concurrency slot, started when the governor's schedule allows.

        A failed try gives its slot back; a successful one returns still holding it (run() lets
        it go once the answer is stored).
        """
        governor = self.governor
        loop = asyncio.get_running_loop()
        await self._slots.acquire()
        try:
            await governor.admit(tokens)
            if self._halted:
                raise asyncio.CancelledError  # the run is ending: send nothing more
            self._sent.add(asyncio.current_task())  # type: ignore[arg-type]
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                result = await call(job)
            finally:
                self.in_flight -= 1
        except TransientError as error:
            self._slots.release()
            self._sent.discard(asyncio.current_task())  # type: ignore[arg-type]
            self._on_failure(error, loop.time())
            raise
        except BaseException:
            self._slots.release()
            self._sent.discard(asyncio.current_task())  # type: ignore[arg-type]
            raise
        self._connection_failures = 0
        governor.on_success(loop.time())
        return result

    def _bind_slots(self, loop: asyncio.AbstractEventLoop) -> None:
        """One semaphore per event loop: runs in one loop share the bound, a new loop gets its own.

        Callers may run each batch under a fresh event loop (asyncio.run in a Kedro node), and
        an asyncio.Semaphore cannot be used from a second loop.
        """
        if self._slots_loop is not loop:
            self._slots = asyncio.Semaphore(self.settings.max_concurrent_requests)
            self._slots_loop = loop

    def note_rate_headers(self, headers: Mapping[str, str]) -> None:
        """Let the governor read a provider's `x-ratelimit-*` headers."""
        self.governor.on_rate_headers(headers)

    def _on_failure(self, error: TransientError, now: float) -> None:
        """Account a failed try; too many unopenable connections in a row end the run."""
        if not error.unreachable:
            self._connection_failures = 0
            if error.throttled:
                self.usage.throttled += 1
                self.governor.on_throttled(now, error.retry_after)
            return
        self._connection_failures += 1
        limit = self.settings.max_connection_failures
        if self._connection_failures >= limit:
            raise ProviderUnreachable(
                f"{self.settings.progress_label}: {limit} connection attempts in a row failed "
                f"(last: {error}); check the provider's base_url and that the server is running "
                "(generation.async_config.max_connection_failures sets how many)"
            )

    def _backoff(self, attempt: int, error: TransientError) -> float:
        """Retry-After when the server gave one (plus up to 10% jitter), else full-jitter exponential."""
        if error.retry_after is not None:
            hinted = min(error.retry_after, self.settings.max_retry_after_seconds)
            return hinted * (1.0 + random.uniform(0.0, 0.1))
        ceiling = self.settings.backoff_base_seconds * 2 ** (attempt - 1)
        return random.uniform(0.0, min(self.settings.backoff_max_seconds, ceiling))

    def _describe(self, error: BaseException) -> str:
        """One redacted line naming the error."""
        return self.redact(f"{type(error).__name__}: {error}")


def _raised(task: asyncio.Future[object]) -> bool:
    """Whether a task ended with an exception (a cancelled one did not)."""
    return task.done() and not task.cancelled() and task.exception() is not None


def _per_second(per_minute: float | None) -> float | None:
    return per_minute / 60.0 if per_minute else None
