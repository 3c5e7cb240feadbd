"""The Hugging Face Hub recorded at the HfApi boundary: calls and staged files, no network."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import pytest
from huggingface_hub import HfApi

from judgeforge.publishing import hub as hub_module


class RecordingHfApi(HfApi):
    """An HfApi that records create_repo / upload_folder (and the staged files) instead of calling the Hub."""

    calls: ClassVar[list[tuple[str, dict]]] = []
    failures: ClassVar[list[BaseException]] = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        return f"https://huggingface.co/{kwargs.get('repo_type', 'model')}s/{repo_id}"

    def upload_folder(self, **kwargs):
        if self.failures:
            raise self.failures.pop(0)
        folder = Path(kwargs["folder_path"])
        files = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file()
        }
        self.calls.append(("upload_folder", {**kwargs, "files": files, "token": self.token}))
        return SimpleNamespace(oid="abc123")


@pytest.fixture
def recording_api(monkeypatch) -> type[RecordingHfApi]:
    """Route every Hub call of judgeforge through RecordingHfApi for this test."""
    RecordingHfApi.calls, RecordingHfApi.failures = [], []
    monkeypatch.setattr(hub_module, "HfApi", RecordingHfApi)
    return RecordingHfApi
