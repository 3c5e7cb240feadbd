"""Project commands for the `kedro` CLI: `kedro run` ends a failure a user can fix with one line (exit 2)."""

import re
from pathlib import Path

import click
import yaml
from kedro.framework.cli.project import run as kedro_run

from judgeforge.config.yaml_file import repeated_keys
from judgeforge.errors import (
    USER_ERROR_EXIT,
    UserError,
    causes,
    report_failure,
    verbose_from_environment,
)

# Kedro's runner: "Pipeline input(s) {'params:a.b', ...} not found in the DataCatalog..."
MISSING_PARAMETERS = re.compile(r"Pipeline input\(s\) \{(.*'params:.*)\} not found")
PARAMETER_NAME = re.compile(r"'(params:[^']+)'")
VERBOSE = click.Option(
    ["--verbose"],
    is_flag=True,
    default=False,
    help="Show every log line, and the traceback of a failure a user can fix too (or set JUDGEFORGE_VERBOSE=1).",
)
from judgeforge.console import restore_verbose_logging


@click.group(name="judgeforge")
def cli() -> None:
    """Project-specific Kedro commands."""


@cli.command(
    name="run",
    params=[*kedro_run.params, VERBOSE],
    help=kedro_run.help,
    context_settings=kedro_run.context_settings,
)
@click.pass_context
def run(ctx: click.Context, verbose: bool, **kwargs) -> None:
    """Run Kedro's `run`; a failure a user can fix prints one line and exits 2, a bug its traceback and 1."""
    unknown = unknown_pipelines(
        [kwargs["pipeline"]] if kwargs.get("pipeline") else kwargs.get("pipelines") or []
    )
    if unknown:
        click.echo(f"Error: {unknown}", err=True)
        ctx.exit(USER_ERROR_EXIT)
    if kwargs.get("pipelines"):
        try:
            kwargs["pipelines"] = chained_pipelines(kwargs["pipelines"])
        except UserError as error:
            click.echo(f"Error: {error}", err=True)
            ctx.exit(USER_ERROR_EXIT)
    if verbose:
        restore_verbose_logging()
    try:
        ctx.invoke(kedro_run, **kwargs)
    except Exception as error:  # noqa: BLE001 -- every failure ends here: one line, or a bug's traceback
        ctx.exit(
            report_failure(
                error,
                "Error",
                verbose or verbose_from_environment(),
                conf_file_problem(error, Path(kwargs.get("conf_source") or "conf")),
            )
        )


def conf_file_problem(error: BaseException, conf_source: Path) -> str:
    """Return the one line for conf Kedro could not use (bad YAML, a key written twice, a parameter missing), or ""."""
    from kedro.config import MissingConfigException

    for cause in causes(error):
        if isinstance(cause, MissingConfigException):
            return str(cause)
        if isinstance(cause, yaml.constructor.ConstructorError) and "duplicate key" in str(
            cause.problem
        ):
            # OmegaConf does not say which file: find it
            for path in sorted(conf_source.rglob("*.y*ml")):
                repeated = repeated_keys(path.read_text(encoding="utf-8"))
                if repeated:
                    key, first, second = repeated[0]
                    return f"{path}: key {key!r} is written twice (lines {first} and {second}): keep one"
        missing = MISSING_PARAMETERS.search(str(cause)) if isinstance(cause, ValueError) else None
        if missing:
            names = ", ".join(
                sorted(
                    name.removeprefix("params:")
                    for name in PARAMETER_NAME.findall(missing.group(1))
                )
            )
            return f"{conf_source}: no value for the parameter(s) {names}: add them to a parameters*.yml (see docs/configuration.md)"
        if isinstance(cause, yaml.YAMLError):
            return f"a file under {conf_source} is not valid YAML: {' '.join(str(cause).split())}"
    return ""


def chained_pipelines(names: list[str]) -> list[str]:
    """Return the registered pipelines a `--pipelines` list runs (judgeforge.pipeline_registry.pipelines_to_run)."""
    from kedro.framework.project import pipelines

    from judgeforge.pipeline_registry import pipelines_to_run

    return pipelines_to_run(list(names), pipelines)


def unknown_pipelines(names: list[str]) -> str:
    """Return the one-line error for pipeline names that are not registered, or ""."""
    from kedro.framework.project import pipelines

    from judgeforge.pipeline_registry import SEPARATOR

    missing = [name for name in names if name not in pipelines]
    if not missing:
        return ""
    # the stages; the registered compositions are stages joined with SEPARATOR
    stages = sorted(name for name in pipelines if name != "__default__" and SEPARATOR not in name)
    return (
        f"no pipeline named {', '.join(map(repr, missing))}: the pipelines are "
        f"{', '.join(stages)}, and their compositions in chain order joined with "
        f"{SEPARATOR!r} (e.g. ingestion{SEPARATOR}synthesis{SEPARATOR}diagnostics)"
    )
