"""The built wheel, installed into a fresh venv, runs from any folder; `judgeforge init` writes a project `kedro run` runs.

The venv is fresh (`python -m venv --without-pip`) and gets the wheel with `pip install
--no-deps`; its dependencies come from the shared test venv through a .pth line naming that
venv's site-packages (a plain path line: the shared venv's own .pth files, the editable install
of judgeforge among them, are not processed), so nothing is downloaded.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import datasets
import pytest
import yaml

from tests.conftest import PROJECT_ROOT, copy_project
from tests.run_yaml import EXAMPLES, loopback_run_yaml
from tests.support.openai_server import Reply

COMPLAINT_EXAMPLE = next(p for p in EXAMPLES if p.stem == "binary_single_customer_complaint")
REQUESTED_CLASS = re.compile(r"new, different examples? of class (\w+):")
# what setup.py and the sdist need besides what a fresh clone's copy holds
BUILD_FILES = ("setup.py", "MANIFEST.in", "LICENSE")


def new_examples():
    """Return a responder that answers every generation call with one new example of the asked class."""
    counter = itertools.count()

    def respond(request) -> Reply:
        wanted = REQUESTED_CLASS.search(request.last_user_message).group(1)
        return Reply.json({"examples": [{"text": f"A {wanted} message, number {next(counter)}"}]})

    return respond


def outside_checkout() -> dict[str, str]:
    """Return this process's environment without a checkout on the import path."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "KEDRO_LOGGING_CONFIG", "VIRTUAL_ENV")
    }
    return environment | {"OPENAI_API_KEY": "sk-loopback", "KEDRO_DISABLE_TELEMETRY": "1"}


def run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run a command of the venv's bin/ in `cwd`, with no checkout on the import path."""
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        cwd=cwd,
        env=outside_checkout(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def succeeded(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """Return the finished process, failing the test with its output when it failed."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    return result


def files_under(folder: Path) -> set[Path]:
    """Return every file under `folder` (caches aside)."""
    return {p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a fresh venv holding judgeforge installed from a wheel built from this checkout."""
    root = tmp_path_factory.mktemp("wheel")
    source = copy_project(root / "source")
    for name in BUILD_FILES:
        shutil.copy2(PROJECT_ROOT / name, source / name)
    succeeded_build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["--wheel-dir", str(root / "dist"), str(source)],
        env=outside_checkout(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    succeeded(succeeded_build)
    (wheel,) = (root / "dist").glob("judgeforge-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    succeeded(
        subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
            + ["install", "--no-deps", "--no-index", str(wheel)],
            env=outside_checkout(),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    )
    site_packages = subprocess.check_output(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig;print(sysconfig.get_path('purelib'))",
        ],
        text=True,
    ).strip()
    # written after the install: pip would take the shared venv's judgeforge for this one
    (Path(site_packages) / "shared_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def installed_package(venv: Path) -> Path:
    """Return the folder the venv imports judgeforge from."""
    printed = run(venv, venv, "python", "-c", "import judgeforge;print(judgeforge.__file__)")
    return Path(succeeded(printed).stdout.strip()).parent


def test_the_wheel_runs_a_job_from_any_folder_and_writes_next_to_the_run_yaml(
    installed: Path, openai_server, tmp_path: Path
) -> None:
    package = installed_package(installed)
    assert package.is_relative_to(installed), package
    assert (package / "project_files" / "conf" / "base" / "catalog_01_raw.yml").is_file()
    assert not (package / "project_files" / "conf" / "local" / "credentials.yml").exists()
    package_files = files_under(package)

    openai_server.respond_with(new_examples())
    jobs = tmp_path / "jobs"
    (jobs / "seeds").mkdir(parents=True)
    shutil.copy2(
        PROJECT_ROOT / "data/01_raw/customer_messages.csv", jobs / "seeds" / "messages.csv"
    )
    run_yaml = loopback_run_yaml(
        COMPLAINT_EXAMPLE,
        openai_server.base_url,
        jobs / "run.yaml",
        run_steps=["data_generation"],
        data_generation__source_data__dataset__csv__file_path="seeds/messages.csv",
        data_generation__output__local_path="out",
    )
    repo = yaml.safe_load(run_yaml.read_text())["data_generation"]["output"]["dataset"]["repo_name"]

    # started from the YAML's parent folder: relative paths still resolve against jobs/
    validated = succeeded(run(installed, tmp_path, "judgeforge", "validate", "-c", "jobs/run.yaml"))
    assert "jobs/run.yaml: valid" in validated.stdout
    previewed = succeeded(
        run(installed, tmp_path, "judgeforge", "preview", "-c", "jobs/run.yaml", "-n", "1")
    )
    assert previewed.stdout.strip()
    ran = succeeded(run(installed, tmp_path, "judgeforge", "run", "-c", "jobs/run.yaml"))
    assert f"dataset: {jobs.resolve() / 'out' / repo}\n" in ran.stdout
    train = datasets.load_from_disk(str(jobs / "out" / repo))["train"].to_pandas()
    assert (train["source"] == "synthetic").sum() == 4
    assert (jobs / "data" / "02_intermediate" / "llm_cache.sqlite").is_file()
    assert not (tmp_path / "data").exists() and not (tmp_path / "out").exists()

    # the SDK door, from a third folder: the answers come from the cache of the first run
    requests = len(openai_server.requests)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sdk = run(
        installed,
        elsewhere,
        "python",
        "-c",
        f"import judgeforge;print(judgeforge.run_data_generation(config_path={str(run_yaml)!r}))",
    )
    assert succeeded(sdk).stdout.strip().endswith(f"out/{repo}")
    assert len(openai_server.requests) == requests
    assert list(elsewhere.iterdir()) == []
    assert files_under(package) == package_files


def test_a_seed_path_is_relative_to_the_run_yaml_not_the_current_folder(
    installed: Path, openai_server, tmp_path: Path
) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    # the seed lies next to the current folder, not next to the YAML: validate names it
    (tmp_path / "seeds").mkdir()
    shutil.copy2(PROJECT_ROOT / "data/01_raw/customer_messages.csv", tmp_path / "seeds" / "m.csv")
    loopback_run_yaml(
        COMPLAINT_EXAMPLE,
        openai_server.base_url,
        jobs / "run.yaml",
        data_generation__source_data__dataset__csv__file_path="seeds/m.csv",
    )
    result = run(installed, tmp_path, "judgeforge", "validate", "-c", "jobs/run.yaml")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "data_generation.source_data.dataset.csv.file_path seeds/m.csv: not found" in (
        result.stderr
    )


def test_init_writes_a_project_that_kedro_run_and_judgeforge_run_use(
    installed: Path, openai_server, tmp_path: Path
) -> None:
    openai_server.respond_with(new_examples())
    written = succeeded(run(installed, tmp_path, "judgeforge", "init", "starter"))
    assert "starter: Kedro project written" in written.stdout
    project = tmp_path / "starter"
    assert (project / "conf" / "base" / "parameters.yml").is_file()
    assert (project / "data" / "01_raw" / "customer_messages.csv").is_file()
    assert "[tool.kedro]" in (project / "pyproject.toml").read_text()
    assert yaml.safe_load((project / "run.yaml").read_text())["data_generation"]

    # the Kedro door: conf/local overrides the defaults of conf/base, as in any Kedro project
    loopback = {
        "llm": {
            "provider": "openai",
            "model": "test-model",
            "embedding_model": "text-embedding-3-small",
            "base_url": openai_server.base_url,
        },
        "generation": {"total_examples": 4, "examples_per_call": 1},
        "data_quality_metrics": {"enabled": False},
    }
    (project / "conf" / "local" / "parameters_loopback.yml").write_text(
        yaml.safe_dump({"data_generation": loopback})
    )
    succeeded(
        run(
            installed, project, "python", "-m", "kedro", "run", "--pipelines", "ingestion+synthesis"
        )
    )
    assert (project / "data" / "03_primary" / "synthetic_examples.parquet").is_file()

    # the run-YAML door in the same project
    loopback_run_yaml(
        project / "run.yaml",
        openai_server.base_url,
        project / "run.yaml",
        run_steps=["data_generation"],
    )
    ran = succeeded(run(installed, project, "judgeforge", "run", "-c", "run.yaml"))
    dataset = ran.stdout.split("dataset: ")[1].strip()
    output = yaml.safe_load((project / "run.yaml").read_text())["data_generation"]["output"]
    written = Path(output["local_path"]) / output["dataset"]["repo_name"]
    assert Path(dataset) == project.resolve() / written
    assert (Path(dataset) / "dataset_dict.json").is_file()

    refused = run(installed, tmp_path, "judgeforge", "init", "starter")
    assert refused.returncode == 2
    assert "starter: is not empty; pass a new or empty folder to init" in refused.stderr
