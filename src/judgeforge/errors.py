"""Failures a user causes or meets, and how both doors report them: one line, exit status 2.

Every exception a user can fix (a bad config, unusable seed data, a missing key, a Hub or
object-store refusal, an unreachable provider) derives from `UserError`; files that are
missing or unreadable and services that refuse or cannot be reached (`met_errors`) are told
the same way. The `judgeforge`
command and the project's `kedro run` print such an error as one line and exit with
USER_ERROR_EXIT; anything else is a bug and keeps its traceback (exit 1). `--verbose` or
JUDGEFORGE_VERBOSE=1 shows the traceback of a user error too.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import traceback
from collections.abc import Iterator

USER_ERROR_EXIT = 2
BUG_EXIT = 1
VERBOSE_ENV_VAR = "JUDGEFORGE_VERBOSE"
# File-system facts the user fixes (a path that is missing, a folder, unreadable).
FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class UserError(Exception):
    """A failure the user can fix; its message names what to fix, in one line per problem."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """Yield `error`, then what caused it, and so on (Kedro wraps node and dataset errors)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        yield current
        seen.add(id(current))
        current = current.__cause__ or current.__context__


def user_error_in(error: BaseException) -> BaseException | None:
    """Return the error behind `error` that the user caused or met (not a bug), else None."""
    return next(
        (
            cause
            for cause in causes(error)
            if isinstance(cause, (UserError, *FILE_ERRORS, *met_errors()))
        ),
        None,
    )


@functools.cache
def met_errors() -> tuple[type[BaseException], ...]:
    """Return the failures of services a run reaches (network, Hub, object store), told in one line too."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    with contextlib.suppress(ImportError):
        import aiohttp

        found.append(aiohttp.ClientError)
    with contextlib.suppress(ImportError):
        import httpx2
        from huggingface_hub.errors import HfHubHTTPError

        found += [HfHubHTTPError, httpx2.TransportError]
    with contextlib.suppress(ImportError):
        from botocore.exceptions import BotoCoreError, ClientError

        found += [BotoCoreError, ClientError]
    return tuple(found)


def verbose_from_environment() -> bool:
    """Return whether JUDGEFORGE_VERBOSE (or --verbose) asks for every log line and traceback."""
    return os.environ.get(VERBOSE_ENV_VAR, "").strip().lower() in {"1", "true", "yes", "on"}


def report_failure(error: BaseException, prefix: str, verbose: bool, message: str = "") -> int:
    """Print a user error as one line (a bug as its traceback) on stderr; return the exit status.

    `message` is the line for an error the caller knows to be the user's (a broken conf file).
    """
    found = user_error_in(error)
    if found is None and not message:
        traceback.print_exception(error, file=sys.stderr)
        return BUG_EXIT
    if verbose:
        traceback.print_exception(error, file=sys.stderr)
    print(f"{prefix}: {message or one_line(found)}", file=sys.stderr)
    return USER_ERROR_EXIT


def one_line(error: BaseException) -> str:
    """Return the message of an error: a UserError's own lines, a file error as `path: reason`, else type and first line."""
    if isinstance(error, UserError):
        return str(error) or type(error).__name__
    if isinstance(error, FILE_ERRORS):
        return (
            f"{error.filename}: {error.strerror}"
            if error.filename is not None and error.strerror
            else str(error)
        )
    first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first}" if first else type(error).__name__
