"""Where a run's Kedro project is: a folder with `[tool.kedro]` around it, or the configuration packaged with judgeforge.

Inside a Kedro project (this repository, or a folder written by `judgeforge init`) the project
folder holds conf/ and anchors the catalog's relative paths (Kedro's rule). Anywhere else
judgeforge bootstraps itself against the conf/ it carries as package data, as Kedro runs a
packaged project with `--conf-source`, and the run YAML's folder plays the project folder: every
output the catalog writes under data/ lives there (never inside site-packages). Either way the
relative paths written in a run YAML are anchored at the YAML's own folder.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import yaml
from ruamel.yaml import YAML

from judgeforge.errors import UserError
from judgeforge.project_files import (
    CONF,
    EXAMPLE_RUN_YAML,
    LOCAL_SECRETS,
    PACKAGED_FOLDER,
    SEED_FILE,
)

PACKAGE_NAME = "judgeforge"
LOGGING_FILE = "logging.yml"
KEDRO_SECTION = "[tool.kedro]"
RUN_YAML_NAME = "run.yaml"
# A project written by `judgeforge init` has no package of its own: Kedro imports the installed
# judgeforge, and its source_dir (which must exist) is the project folder itself.
PYPROJECT = """\
# A Kedro project that runs the installed judgeforge package (written by `judgeforge init`).
[tool.kedro]
package_name = "judgeforge"
project_name = "{name}"
kedro_init_version = "{kedro_version}"
source_dir = "."
"""


class FolderNotEmpty(UserError):
    """`judgeforge init` was pointed at a folder that already holds files."""


@dataclass(frozen=True)
class KedroProject:
    """The folder a run is anchored at, the Kedro configuration it reads, and where its run config's relative paths start."""

    path: Path
    conf_source: Path
    # the run YAML's folder; the project folder for the parameters in conf/
    config_folder: Path


def find_project_root(start: Path | None = None) -> Path | None:
    """Return the nearest folder at or above `start` (default: cwd) holding a Kedro pyproject, or None."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and KEDRO_SECTION in pyproject.read_text(encoding="utf-8"):
            return folder
    return None


def project_files_root() -> Path:
    """Return the folder holding judgeforge.project_files.PROJECT_FILES by their relative paths.

    A wheel carries them as the package data `judgeforge/project_files` (setup.py copies them
    there); an editable install imports judgeforge from a checkout's src/, whose root holds them.
    """
    package = Path(str(files(PACKAGE_NAME)))
    for root in (package / PACKAGED_FOLDER, package.parents[1]):
        if (root / CONF / "base").is_dir():
            return root
    raise FileNotFoundError(
        f"judgeforge's default configuration is missing from {package}; reinstall judgeforge"
    )


def open_project(
    project_path: str | Path | None = None, config_folder: str | Path | None = None
) -> KedroProject:
    """Configure Kedro for judgeforge and return the project a run in the current folder belongs to.

    `project_path` names the project; else the nearest Kedro project at or above the current
    folder is used; else judgeforge's packaged conf, anchored at `config_folder` (default: the
    current folder). `config_folder` (the run YAML's) anchors the run config's relative paths;
    without it the project folder does.
    """
    root = Path(project_path) if project_path else find_project_root()
    if root is not None:
        from kedro.framework.project import settings
        from kedro.framework.startup import bootstrap_project

        root = root.resolve()
        bootstrap_project(root)
        folder = Path(config_folder).resolve() if config_folder else root
        return KedroProject(root, root / settings.CONF_SOURCE, folder)
    conf = project_files_root() / CONF
    # Kedro reads conf/logging.yml from the current folder, when kedro.framework.project is
    # first imported; this run's conf is elsewhere (an earlier import is configured below)
    logging_file = os.environ.setdefault("KEDRO_LOGGING_CONFIG", str(conf / LOGGING_FILE))
    from kedro.framework.project import configure_logging, configure_project

    configure_project(PACKAGE_NAME)
    configure_logging(yaml.safe_load(Path(logging_file).read_text(encoding="utf-8")))
    folder = (Path(config_folder) if config_folder else Path.cwd()).resolve()
    return KedroProject(folder, conf, folder)


def write_project(folder: str | Path) -> Path:
    """Write a ready Kedro project into `folder` (new or empty); return the run YAML it holds.

    The project holds judgeforge's default conf/ (conf/base is what `kedro run` runs), the
    example run YAML as run.yaml (its seed path re-pointed from the example's folder to the
    project's), its seed file under data/01_raw, and a pyproject.toml with `[tool.kedro]` so
    `kedro run` and `judgeforge run` started there use this conf/.
    """
    from kedro import __version__ as kedro_version

    target = Path(folder).resolve()
    if target.exists() and any(target.iterdir()):
        raise FolderNotEmpty(f"{folder}: is not empty; pass a new or empty folder to init")
    source = project_files_root()
    secrets = source / LOCAL_SECRETS
    shutil.copytree(
        source / CONF,
        target / CONF,
        ignore=lambda parent, names: [name for name in names if Path(parent, name) == secrets],
        dirs_exist_ok=True,
    )
    (target / SEED_FILE).parent.mkdir(parents=True)
    shutil.copy2(source / SEED_FILE, target / SEED_FILE)
    write_run_yaml(source / EXAMPLE_RUN_YAML, target / RUN_YAML_NAME, SEED_FILE)
    (target / "pyproject.toml").write_text(
        PYPROJECT.format(name=target.name, kedro_version=kedro_version), encoding="utf-8"
    )
    return target / RUN_YAML_NAME


def write_run_yaml(example: Path, target: Path, seed_file: str) -> None:
    """Write the example run YAML to `target` with its seed path set to `seed_file`, comments kept."""
    # ruamel's round-trip mode keeps the example's comments, quotes, nulls and layout
    round_trip = YAML()
    round_trip.preserve_quotes = True
    round_trip.indent(mapping=2, sequence=4, offset=2)
    round_trip.width = 4096  # no re-wrapping of the long prompts
    round_trip.representer.add_representer(
        type(None), lambda dumper, _: dumper.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    config = round_trip.load(example.read_text(encoding="utf-8"))
    config["data_generation"]["source_data"]["dataset"]["csv"]["file_path"] = seed_file
    with target.open("w", encoding="utf-8") as stream:
        round_trip.dump(config, stream)
