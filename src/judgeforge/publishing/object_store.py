"""Directories to and from an object store as one compressed tarball, through fsspec (s3fs, gcsfs).

An artifact lives at `<bucket>/<blob>/<name>.tar.gz`. `bucket` is a bucket name (S3) or a URL
with its scheme (`gs://my-bucket`, `s3://my-bucket`). Credentials are fsspec storage options:
the Kedro credentials entry `object_store` (for S3: key, secret, token, endpoint_url or
client_kwargs) or, when it is empty, the standard environment variables and config files of
the provider (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_ENDPOINT_URL,
GOOGLE_APPLICATION_CREDENTIALS).
"""

from __future__ import annotations

import logging
import shutil
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec

from judgeforge.errors import UserError

if TYPE_CHECKING:
    from judgeforge.config.training import ModelConfig

log = logging.getLogger(__name__)

ARCHIVE_SUFFIX = ".tar.gz"
ADAPTERS_FOLDER = "adapters"
DEFAULT_SCHEME = "s3"


class ObjectStoreError(UserError, ValueError):
    """An object-store transfer that failed for a reason the user can fix."""


def archive_url(bucket: str, blob: str, name: str) -> str:
    """Return the URL of the artifact `name` under `bucket`/`blob`."""
    root = bucket if "://" in bucket else f"{DEFAULT_SCHEME}://{bucket}"
    parts = [root.rstrip("/"), blob.strip("/"), f"{name.strip('/')}{ARCHIVE_SUFFIX}"]
    return "/".join(part for part in parts if part)


def pack_directory(directory: Path, archive: Path) -> None:
    """Write every file under `directory` into a gzip tarball, paths relative to it, in sorted order."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)


def unpack_archive(archive: Path, directory: Path) -> None:
    """Extract a tarball written by `pack_directory` into `directory`, refusing paths that leave it."""
    directory.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(directory, filter="data")


@dataclass
class ObjectStore:
    """fsspec storage options for object-store URLs; never shows the secrets it holds."""

    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def push_directory(self, directory: str | Path, url: str) -> dict[str, Any]:
        """Upload `directory` as a tarball to `url`; return what was written where."""
        source = Path(directory)
        if not source.is_dir():
            raise ObjectStoreError(f"cannot push {source}: not a directory")
        fs, path = self._filesystem(url)
        with tempfile.TemporaryDirectory(prefix="judgeforge-push-") as tmp:
            archive = Path(tmp) / f"artifact{ARCHIVE_SUFFIX}"
            pack_directory(source, archive)
            size = archive.stat().st_size
            self._call(url, "upload to", lambda: fs.put_file(str(archive), path))
        log.info("pushed %s to %s (%d bytes)", source, url, size)
        return {"url": url, "bytes": size, "files": sum(1 for p in source.rglob("*") if p.is_file())}

    def pull_directory(self, url: str, directory: str | Path) -> Path:
        """Download the tarball at `url` and extract it into `directory` (replacing what was there)."""
        target = Path(directory)
        fs, path = self._filesystem(url)
        with tempfile.TemporaryDirectory(prefix="judgeforge-pull-") as tmp:
            archive = Path(tmp) / f"artifact{ARCHIVE_SUFFIX}"
            self._call(url, "download from", lambda: fs.get_file(path, str(archive)))
            staging = Path(tmp) / "extracted"
            unpack_archive(archive, staging)
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging), str(target))
        log.info("pulled %s into %s", url, target)
        return target

    def _filesystem(self, url: str) -> tuple[Any, str]:
        try:
            return fsspec.core.url_to_fs(url, **dict(self.storage_options))
        except (ImportError, ValueError) as error:
            raise ObjectStoreError(f"{url}: no filesystem for this URL ({error}); install s3fs for s3://, gcsfs for gs://") from None

    def _call(self, url: str, action: str, transfer: Any) -> None:
        bucket = url.split("://", 1)[-1].split("/", 1)[0]
        try:
            transfer()
        except PermissionError:
            raise ObjectStoreError(
                f"{action} {url}: access denied — check the object_store credentials (key/secret) or "
                "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and the bucket's permissions"
            ) from None
        except FileNotFoundError:
            what = "bucket or artifact" if action.startswith("download") else "bucket"
            raise ObjectStoreError(f"{action} {url}: {what} not found — check that bucket {bucket!r} exists and object_store_bucket/blob are right") from None
        except OSError as error:
            raise ObjectStoreError(f"{action} {url}: {type(error).__name__}: {error}") from None


def pull_model_from_object_store(object_store: ObjectStore, model: ModelConfig, local_root: str | Path) -> dict[str, Path]:
    """Pull the base model (`<blob_base>/<model.name>`) and its mapped LoRA adapter (`<blob_adapters>/<repo id>`) under `local_root`."""
    bucket = str(model.model_object_store_bucket)
    root = Path(local_root)
    pulled = {"base_model": object_store.pull_directory(archive_url(bucket, str(model.model_object_store_blob_base), model.name), root / model.name)}
    adapter = model.peft_model_map.get(model.name)
    if adapter:
        url = archive_url(bucket, str(model.model_object_store_blob_adapters), adapter)
        pulled["adapter"] = object_store.pull_directory(url, root / ADAPTERS_FOLDER / adapter)
    return pulled
