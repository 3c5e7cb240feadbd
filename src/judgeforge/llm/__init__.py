"""The LLM layer: one async interface (`generate`, `embed`) over local, OpenAI-style and Gemini models."""

from judgeforge.llm.cache import ResponseCache, request_key
from judgeforge.llm.client import LLMClient
from judgeforge.llm.engine import EngineSettings
from judgeforge.llm.errors import (
    DeliveryShortfall,
    ProviderError,
    ProviderRejected,
    ProviderUnreachable,
)
from judgeforge.llm.factory import build_llm_client, default_cache_path
from judgeforge.llm.providers import PROVIDERS
from judgeforge.llm.types import (
    DEFAULT_PRICES,
    ChatMessage,
    LLMConfigError,
    LLMRequest,
    LLMResponse,
    ModelPrice,
    Usage,
)

__all__ = [
    "DEFAULT_PRICES",
    "PROVIDERS",
    "ChatMessage",
    "DeliveryShortfall",
    "EngineSettings",
    "LLMClient",
    "LLMConfigError",
    "LLMRequest",
    "LLMResponse",
    "ModelPrice",
    "ProviderError",
    "ProviderRejected",
    "ProviderUnreachable",
    "ResponseCache",
    "Usage",
    "build_llm_client",
    "default_cache_path",
    "request_key",
]
