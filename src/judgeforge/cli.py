"""Project commands for the `kedro` CLI: `kedro run` prints config problems without a traceback."""

import click
from kedro.framework.cli.project import run as kedro_run

from judgeforge.config import ConfigError
from judgeforge.console import restore_verbose_logging


@click.group(name="judgeforge")
def cli() -> None:
    """Project-specific Kedro commands."""


@cli.command(name="run", params=list(kedro_run.params), help=kedro_run.help, context_settings=kedro_run.context_settings)
@click.option("--verbose", is_flag=True, help="Show every Kedro log line (each dataset loaded and saved).")
@click.pass_context
def run(ctx: click.Context, verbose: bool, **kwargs) -> None:
    """Run Kedro's `run`; a bad config exits with one line per problem (exit code 2)."""
    if verbose:
        restore_verbose_logging()
    try:
        ctx.invoke(kedro_run, **kwargs)
    except ConfigError as error:
        click.echo(f"Error: {error}", err=True)
        ctx.exit(2)
