"""`judgeforge report`: run the reporting pipeline alone, on what the last run left on disk."""

from __future__ import annotations

from pathlib import Path

from judgeforge.config import load_run_config
from judgeforge.errors import UserError

PIPELINE = "reporting"
REPORT_ENTRY = "report_html"


class UnreadableOutput(UserError):
    """A stage output the report reads exists but cannot be read."""


def write_report(
    config_path: str | Path | None = None,
    env: str | None = None,
    project_path: str | Path | None = None,
) -> str:
    """Write the report of the outputs on disk and return its location.

    With a run YAML its values are the parameters (so config-bound locations such as the
    diagnostics folder and the judge's folder are the ones that run used); without, the
    Kedro parameters of `conf/` and `env`.
    """
    from kedro.framework.project import settings
    from kedro.framework.session import KedroSession
    from kedro.io import DatasetError

    from judgeforge.project import open_project
    from judgeforge.run_globals import project_location
    from judgeforge.sdk import open_run_project, run_config

    project = (
        open_run_project(config_path, project_path) if config_path else open_project(project_path)
    )
    try:
        if config_path is not None:
            run_config(load_run_config(config_path), PIPELINE, project, env=env)
        else:
            with KedroSession.create(
                project_path=project.path, env=env, conf_source=str(project.conf_source)
            ) as session:
                session.run(pipeline_names=[PIPELINE])
    except DatasetError as error:
        # an output that exists but cannot be read: name it, and what rewrites it
        reason = " ".join(str(error).split())
        raise UnreadableOutput(
            f"{reason} (re-run the stage that writes it, or delete the file)"
        ) from None
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project.conf_source), env=env, **settings.CONFIG_LOADER_ARGS
    )
    return project_location(loader["catalog"][REPORT_ENTRY]["filepath"], project.path)
