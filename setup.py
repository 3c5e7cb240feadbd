"""Build hook: the wheel carries the project's default Kedro conf/ and the files `judgeforge init` writes.

Everything else lives in pyproject.toml. setuptools packages only what lies under src/, and the
Kedro project keeps conf/, examples/ and data/ at its root (where `kedro run` reads them), so
this copies judgeforge.project_files.PROJECT_FILES into the built package instead of moving them.
"""

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
FILES = runpy.run_path(str(ROOT / "src" / "judgeforge" / "project_files.py"))


class BuildWithProjectFiles(build_py):
    """build_py that also copies the project files into judgeforge/project_files/."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "judgeforge" / FILES["PACKAGED_FOLDER"]
        secrets = ROOT / FILES["LOCAL_SECRETS"]
        for relative in FILES["PROJECT_FILES"]:
            source, destination = ROOT / relative, target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(
                    source,
                    destination,
                    dirs_exist_ok=True,
                    ignore=lambda folder, names: [
                        name for name in names if Path(folder, name) == secrets
                    ],
                )
            else:
                shutil.copy2(source, destination)


setup(cmdclass={"build_py": BuildWithProjectFiles})
