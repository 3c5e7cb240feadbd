"""Wheel install to first result from a fresh venv: the time of each step and what was downloaded (not a test).

    PYTHONPATH=src .venv/bin/python benchmarks/wheel_install.py [--repeats 3] [--resolve]

Each repeat builds the wheel from a copy of the checkout (`pip wheel --no-deps
--no-build-isolation`), creates a fresh venv (`python -m venv --without-pip`), installs the
wheel with `pip install --no-deps --no-index` (pip may reach no index, so nothing is
downloaded), points the venv at this venv's site-packages for the dependencies (a .pth line),
then runs `judgeforge run -c jobs/run.yaml` from a temporary folder against the loopback
OpenAI-compatible server (4 examples, diagnostics off) until the dataset is on disk.
`--resolve` also asks pip's resolver (PyPI) what a fresh venv without the shared packages would
have to download: the distributions and versions (pip's report gives no sizes).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import copy_project
from tests.run_yaml import loopback_run_yaml
from tests.support.openai_server import OpenAIServer
from tests.test_packaging import BUILD_FILES, new_examples, outside_checkout

EXAMPLE = ROOT / "examples" / "binary_single_customer_complaint.yaml"


def timed(command: list[str], cwd: Path | None = None) -> float:
    """Run `command` (failing loudly) and return its wall-clock seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=outside_checkout(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}"
        )
    return time.perf_counter() - started


def one_install(folder: Path, base_url: str) -> dict[str, float]:
    """Build, install and run once in `folder`; return the seconds of each step."""
    folder.mkdir()
    source = copy_project(folder / "source")
    for name in BUILD_FILES:
        shutil.copy2(ROOT / name, source / name)
    dist, venv = folder / "dist", folder / "venv"
    python = venv / "bin" / "python"
    steps = {
        "build wheel": timed(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
            + ["--wheel-dir", str(dist), str(source)]
        ),
        "create venv": timed([sys.executable, "-m", "venv", "--without-pip", str(venv)]),
    }
    (wheel,) = dist.glob("judgeforge-*.whl")
    steps["install wheel"] = timed(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps"]
        + ["--no-index", str(wheel)]
    )
    site_packages = subprocess.check_output(
        [str(python), "-c", "import sysconfig;print(sysconfig.get_path('purelib'))"], text=True
    ).strip()
    (Path(site_packages) / "shared_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    jobs = folder / "work" / "jobs"
    jobs.mkdir(parents=True)
    loopback_run_yaml(EXAMPLE, base_url, jobs / "run.yaml", run_steps=["data_generation"])
    (jobs / "data" / "01_raw").mkdir(parents=True)
    shutil.copy2(ROOT / "data/01_raw/customer_messages.csv", jobs / "data" / "01_raw")
    steps["first result (judgeforge run)"] = timed(
        [str(venv / "bin" / "judgeforge"), "run", "-c", "jobs/run.yaml"], cwd=folder / "work"
    )
    if not any((jobs / "data" / "generated_data").glob("*/dataset_dict.json")):
        raise SystemExit(f"no dataset under {jobs}/data/generated_data")
    steps["total"] = sum(steps.values())
    return steps


def fresh_downloads(folder: Path) -> list[dict[str, object]]:
    """Return what pip would download into an empty venv for the wheel's dependencies (asks PyPI)."""
    venv = folder / "empty"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (wheel,) = (folder / "dist").glob("judgeforge-*.whl")
    report = folder / "report.json"
    timed(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install"]
        + ["--dry-run", "--ignore-installed", "--quiet", "--report", str(report), str(wheel)]
    )
    return [
        {
            "name": item["metadata"]["name"],
            "version": item["metadata"]["version"],
            "url": item["download_info"]["url"],
        }
        for item in json.loads(report.read_text())["install"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--resolve", action="store_true", help="ask PyPI what a fresh venv needs")
    args = parser.parse_args()

    runs = []
    with OpenAIServer() as server, tempfile.TemporaryDirectory(prefix="jf-wheel-") as tmp:
        server.respond_with(new_examples())
        for repeat in range(args.repeats):
            runs.append(one_install(Path(tmp) / str(repeat), server.base_url))
        wheel = next((Path(tmp) / "0" / "dist").glob("judgeforge-*.whl"))
        print(f"wheel: {wheel.name}, {wheel.stat().st_size / 1e3:.0f} kB")
        print(f"{'step':32} median s  (of {args.repeats})")
        for step in runs[0]:
            print(f"{step:32} {statistics.median(r[step] for r in runs):8.1f}")
        print(
            "downloaded: nothing (pip install --no-deps --no-index; dependencies from the shared venv)"
        )
        if args.resolve:
            needed = fresh_downloads(Path(tmp) / "0")
            print(f"a venv without the shared packages would download {len(needed)} distributions:")
            print(", ".join(f"{d['name']}=={d['version']}" for d in needed))


if __name__ == "__main__":
    main()
