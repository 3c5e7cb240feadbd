"""Publishing: datasets and judges to the Hugging Face Hub and to an object store, and back."""

from judgeforge.publishing.hub import Hub, HubError
from judgeforge.publishing.object_store import ObjectStore, ObjectStoreError, archive_url

__all__ = ["Hub", "HubError", "ObjectStore", "ObjectStoreError", "archive_url"]
