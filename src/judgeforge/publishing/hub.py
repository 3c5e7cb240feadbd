"""Datasets and models to the Hugging Face Hub through `HfApi`, retried on transient failures.

The token comes from the Kedro credentials entry `hub` (`token: ...`) or `HF_TOKEN`; a push
without one fails before anything is uploaded (RunConfigHook checks it before the run starts).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import datasets
import httpx2
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from judgeforge.errors import UserError

log = logging.getLogger(__name__)

TOKEN_ENV_VAR = "HF_TOKEN"
TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
UPLOAD_ATTEMPTS = 4
BACKOFF_SECONDS = 2.0
CARD_FILE = "README.md"
T = TypeVar("T")


class HubError(UserError, ValueError):
    """A Hub push that cannot proceed for a reason the user can fix."""


def hub_token(credentials: Mapping[str, Any] | None) -> str | None:
    """Return the Hub token from the `hub` credentials entry, else HF_TOKEN, else None."""
    token = (credentials or {}).get("token") or os.environ.get(TOKEN_ENV_VAR)
    return str(token) if token else None


def missing_token_message(what: str) -> str:
    """Return the one-line error for a push that has no token."""
    return f"{what} needs a Hugging Face token: set HF_TOKEN (or token in the `hub` entry of conf/local/credentials.yml), or turn the push off"


class Hub:
    """Builds the `HfApi` pushes go through; holds the token without ever showing it."""

    def __init__(self, token: str | None, backoff_seconds: float = BACKOFF_SECONDS) -> None:
        self._token = token
        self.backoff_seconds = backoff_seconds

    def __repr__(self) -> str:
        return f"Hub(token={'set' if self._token else 'missing'})"

    def api(self, what: str) -> HfApi:
        """Return an HfApi authenticated with the token, or raise HubError naming `what` needs it."""
        if not self._token:
            raise HubError(missing_token_message(what))
        return HfApi(token=self._token)


def is_transient(error: BaseException) -> bool:
    """Return whether a failed Hub call is worth trying again (rate limit, server error, network)."""
    if isinstance(error, HfHubHTTPError):
        return error.response is not None and error.response.status_code in TRANSIENT_STATUSES
    return isinstance(error, httpx2.TransportError | ConnectionError | TimeoutError)


def with_retries(call: Callable[[], T], what: str, backoff_seconds: float) -> T:
    """Return `call()`, retried with exponential back-off on transient failures, UPLOAD_ATTEMPTS times in all."""
    attempt = 1
    while True:
        try:
            return call()
        except Exception as error:
            if attempt >= UPLOAD_ATTEMPTS or not is_transient(error):
                raise
            delay = backoff_seconds * 2 ** (attempt - 1)
            attempt += 1
            log.warning(
                "%s failed (%s); retrying in %.1fs (attempt %d of %d)",
                what,
                type(error).__name__,
                delay,
                attempt,
                UPLOAD_ATTEMPTS,
            )
            time.sleep(delay)


def stage_dataset(dataset: datasets.DatasetDict, card: str, folder: Path) -> None:
    """Write the Hub layout of a DatasetDict into `folder`: data/<split>-00000-of-00001.parquet per split, and the card."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for split, rows in dataset.items():
        rows.to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    (folder / CARD_FILE).write_text(card, encoding="utf-8")


def push_folder(
    hub: Hub, folder: Path, repo_id: str, repo_type: str, private: bool, message: str
) -> dict[str, Any]:
    """Create the repo if needed and upload `folder` as one commit; return the repo URL and commit."""
    api = hub.api(f"pushing {repo_type} {repo_id}")
    url = with_retries(
        lambda: api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True),
        f"creating {repo_id}",
        hub.backoff_seconds,
    )
    commit = with_retries(
        lambda: api.upload_folder(
            repo_id=repo_id, folder_path=folder, repo_type=repo_type, commit_message=message
        ),
        f"uploading to {repo_id}",
        hub.backoff_seconds,
    )
    log.info("pushed %s to the Hub: %s", repo_type, url)
    return {
        "repo_id": repo_id,
        "repo_type": repo_type,
        "private": private,
        "url": str(url),
        "commit": getattr(commit, "oid", None),
    }


def push_dataset_to_hub(
    hub: Hub, dataset: datasets.DatasetDict, card: str, repo_id: str, private: bool
) -> dict[str, Any]:
    """Push a DatasetDict (parquet per split) and its card to a dataset repo."""
    with tempfile.TemporaryDirectory(prefix="judgeforge-hub-") as tmp:
        stage_dataset(dataset, card, Path(tmp))
        return push_folder(
            hub, Path(tmp), repo_id, "dataset", private, "Upload dataset generated by judgeforge"
        )


def push_model_to_hub(
    hub: Hub, model_dir: Path, card: str, repo_id: str, private: bool
) -> dict[str, Any]:
    """Push a model folder, with `card` as its README, to a model repo."""
    with tempfile.TemporaryDirectory(prefix="judgeforge-hub-") as tmp:
        staged = Path(tmp) / "model"
        shutil.copytree(model_dir, staged)
        (staged / CARD_FILE).write_text(card, encoding="utf-8")
        return push_folder(
            hub, staged, repo_id, "model", private, "Upload judge trained by judgeforge"
        )
