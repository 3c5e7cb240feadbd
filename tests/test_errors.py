"""How both doors tell a failure: one line and exit 2 for what a user causes or meets, a traceback and 1 for a bug."""

from __future__ import annotations

import socket

import httpx2
import pytest
from botocore.exceptions import ClientError
from huggingface_hub.errors import HfHubHTTPError
from kedro.io import DatasetError

from judgeforge.config.problems import ConfigError, Problem
from judgeforge.errors import BUG_EXIT, USER_ERROR_EXIT, report_failure


def refused_connection() -> OSError:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]  # closed again: nothing listens there
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as error:
        return error
    raise AssertionError("a closed port accepted a connection")


def hub_forbidden() -> HfHubHTTPError:
    response = httpx2.Response(
        403, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    )
    return HfHubHTTPError(
        "403 Forbidden: you cannot push to acme/x.\nMake sure your token has write access.",
        response=response,
    )


def wrapped(error: Exception) -> Exception:
    """Return `error` the way Kedro hands it on: a DatasetError raised from it."""
    try:
        raise DatasetError(f"seed_data: {error}") from error
    except DatasetError as outer:
        return outer


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            wrapped(ConfigError([Problem("a.b", 1, "must be 2")], "x.yaml")),
            "Error: invalid x.yaml (1 problem):\n  a.b: 1 — must be 2",
        ),
        (
            FileNotFoundError(2, "No such file or directory", "rows.csv"),
            "Error: rows.csv: No such file or directory",
        ),
        (hub_forbidden(), "Error: HfHubHTTPError: 403 Forbidden: you cannot push to acme/x."),
        (
            ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject"
            ),
            "Error: ClientError: An error occurred (AccessDenied) when calling the PutObject operation: Access Denied",
        ),
        (
            httpx2.ConnectError("[Errno 111] Connection refused"),
            "Error: ConnectError: [Errno 111] Connection refused",
        ),
    ],
)
def test_what_a_user_causes_or_meets_is_one_line_and_exit_2(
    error: Exception, line: str, capsys
) -> None:
    assert report_failure(error, "Error", verbose=False) == USER_ERROR_EXIT
    assert capsys.readouterr().err == line + "\n"


def test_a_refused_connection_is_one_line(capsys) -> None:
    assert report_failure(wrapped(refused_connection()), "Error", verbose=False) == USER_ERROR_EXIT
    assert (
        capsys.readouterr().err == "Error: ConnectionRefusedError: [Errno 111] Connection refused\n"
    )


def test_a_bug_keeps_its_traceback_and_exits_1(capsys) -> None:
    assert report_failure(wrapped(KeyError("row_id")), "Error", verbose=False) == BUG_EXIT
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.rstrip().endswith(
        "DatasetError: seed_data: 'row_id'"
    )


def test_verbose_adds_the_traceback_before_the_line(capsys) -> None:
    assert report_failure(wrapped(hub_forbidden()), "Error", verbose=True) == USER_ERROR_EXIT
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith(
        "\nError: HfHubHTTPError: 403 Forbidden: you cannot push to acme/x.\n"
    )


def test_a_file_error_with_only_a_message_is_that_message(capsys) -> None:
    assert (
        report_failure(
            FileNotFoundError("judge/ is not a saved judge: it has no judge_config.json"),
            "judgeforge",
            verbose=False,
        )
        == 2
    )
    assert (
        capsys.readouterr().err
        == "judgeforge: judge/ is not a saved judge: it has no judge_config.json\n"
    )
