"""llama.cpp single-stream tokens/s on the embedded model's GGUF file, the reference for local generation.

llama-cpp-python is not a judgeforge dependency; build it beside the project. The native build
enables AMX on CPUs that report it, which segfaults where the kernel does not grant AMX (as in
this VM), so build it portable:

    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON" \
        .venv/bin/pip install --no-deps --no-binary llama-cpp-python --target /tmp/llama_pkgs \
        llama-cpp-python==0.3.36 diskcache
    PYTHONPATH=/tmp/llama_pkgs .venv/bin/python benchmarks/llama_cpp_reference.py

It runs in its own process: loaded next to torch in one interpreter, llama.cpp crashed.
"""

import statistics
import time

from llama_cpp import Llama

from judgeforge.models.embedded import embedded_gguf_path

TOPICS = ["the sea", "mountains", "coffee", "trains"]


def single_stream_tokens_per_second(model: Llama, max_tokens: int = 64) -> float:
    """Return tokens/s over four short prompts answered one after another, greedily."""
    started, tokens = time.perf_counter(), 0
    for index, topic in enumerate(TOPICS):
        prompt = f"<|im_start|>user\nWrite two sentences about {topic} (#{index}).<|im_end|>\n<|im_start|>assistant\n"
        tokens += model(prompt, max_tokens=max_tokens, temperature=0.0)["usage"]["completion_tokens"]
    return tokens / (time.perf_counter() - started)


def main() -> None:
    model = Llama(model_path=str(embedded_gguf_path()), n_ctx=2048, n_threads=2, verbose=False, seed=0)
    runs = [single_stream_tokens_per_second(model) for _ in range(3)]
    print(f"llama.cpp single stream: {statistics.median(runs):.1f} tokens/s (runs {', '.join(f'{r:.1f}' for r in runs)})")


if __name__ == "__main__":
    main()
