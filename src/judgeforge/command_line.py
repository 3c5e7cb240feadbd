"""The `judgeforge` command: run a single run YAML, validate it, or ask a trained judge."""

from __future__ import annotations

import argparse
import logging
import sys

from judgeforge.config import load_run_config
from judgeforge.console import restore_verbose_logging
from judgeforge.errors import report_failure, verbose_from_environment


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the judgeforge command."""
    verbose_help = (
        "show every log line, and the traceback of a failure a user can fix too "
        "(or set JUDGEFORGE_VERBOSE=1)"
    )
    parser = argparse.ArgumentParser(prog="judgeforge", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help=verbose_help)
    # also accepted after the command (`judgeforge run -c x --verbose`); SUPPRESS keeps the
    # subcommand's default from overwriting a --verbose given before the command
    after_command = argparse.ArgumentParser(add_help=False)
    after_command.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=verbose_help
    )
    # where the Kedro project and its conf are: every command that runs or reads a project
    in_project = argparse.ArgumentParser(add_help=False, parents=[after_command])
    in_project.add_argument(
        "-e",
        "--env",
        default=None,
        help="Kedro environment for catalog and credentials (default: local)",
    )
    in_project.add_argument(
        "--project-path",
        default=None,
        help="Kedro project folder (default: found from the current folder)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, help_text: str, parent: argparse.ArgumentParser
    ) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[parent], help=help_text)

    run = command("run", "run the steps listed in run_steps of a run YAML", in_project)
    run.add_argument("-c", "--config", required=True, help="path to the run YAML")

    validate = command(
        "validate",
        "check a run YAML and what its run needs (files, tokens, keys, folders); list every problem",
        in_project,
    )
    validate.add_argument("-c", "--config", required=True, help="path to the run YAML")

    report = command(
        "report",
        "write data/08_reporting/report.html from the outputs on disk of the last run",
        in_project,
    )
    report.add_argument(
        "-c",
        "--config",
        default=None,
        help="the run YAML of that run (default: the Kedro parameters in conf/)",
    )

    preview = command(
        "preview", "build the generation plan, send its first calls, estimate the run", in_project
    )
    preview.add_argument("-c", "--config", required=True, help="path to the run YAML")
    preview.add_argument(
        "-n", "--calls", type=int, default=5, help="how many planned calls to send (default 5)"
    )

    init = command(
        "init",
        "write a ready Kedro project (conf, run.yaml, a seed file) into a new or empty folder",
        after_command,
    )
    init.add_argument("folder", help="the project folder to write")

    predict = command(
        "predict", "score a CSV / Parquet / JSONL file with a trained judge", after_command
    )
    predict.add_argument(
        "-m",
        "--model",
        required=True,
        help="the judge's folder (training.output.local_path/model_name)",
    )
    predict.add_argument(
        "-i",
        "--input",
        required=True,
        help="rows with the columns the judge's prompt template names",
    )
    predict.add_argument(
        "-o",
        "--output",
        required=True,
        help="where to write the rows with prediction and probability_<label> columns",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the judgeforge command line; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        restore_verbose_logging()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "validate":
            validate_command(args.config, args.env, args.project_path)
        elif args.command == "run":
            run_command(args.config, args.env, args.project_path)
        elif args.command == "report":
            report_command(args.config, args.env, args.project_path)
        elif args.command == "preview":
            from judgeforge.preview import preview_generation, print_preview

            print_preview(preview_generation(args.config, args.calls, args.env, args.project_path))
        elif args.command == "init":
            init_command(args.folder)
        elif args.command == "predict":
            predict_rows(args.model, args.input, args.output)
    except Exception as error:  # noqa: BLE001 -- every failure ends here: one line, or a bug's traceback
        return report_failure(error, "judgeforge", args.verbose or verbose_from_environment())
    return 0


def predict_rows(model_dir: str, input_path: str, output_path: str) -> None:
    """Score a file of rows with a saved judge and print how many were scored."""
    from judgeforge.training import predict_command

    count = predict_command(model_dir, input_path, output_path)
    print(f"{output_path}: {count} rows scored")


def validate_command(config_path: str, env: str | None, project_path: str | None) -> None:
    """Check the run YAML and what its run needs (seed files, tokens, keys, folders); print that it is valid."""
    from judgeforge.preflight import (
        PreflightError,
        planned_pipeline,
        project_credentials,
        validate_problems,
    )
    from judgeforge.sdk import open_run_project, pipeline_name

    config = load_run_config(config_path)
    project = open_run_project(config_path, project_path)
    pipeline = planned_pipeline(config, [pipeline_name(config)])
    credentials = project_credentials(project.conf_source, env, config)
    problems = validate_problems(config, pipeline, credentials, project.config_folder)
    if problems:
        raise PreflightError(problems)
    print(f"{config_path}: valid (run_steps: {', '.join(config.run_steps)})")


# What `judgeforge run` calls the result of each step when it prints where it is.
RESULT_NAMES = {"data_generation": "dataset", "training": "judge"}


def run_command(config_path: str, env: str | None, project_path: str | None) -> None:
    """Run every step of `run_steps` and print where the results are (what the SDK functions return)."""
    from judgeforge.sdk import open_run_project, pipeline_name, run_config, step_results

    config = load_run_config(config_path)
    project = open_run_project(config_path, project_path)
    locations = run_config(config, pipeline_name(config), project, env=env)
    for step, location in step_results(locations, config.run_steps).items():
        print(f"{RESULT_NAMES[step]}: {location}")


def report_command(config_path: str | None, env: str | None, project_path: str | None) -> None:
    """Run the reporting pipeline on what the last run left on disk and print where the report is."""
    from judgeforge.pipelines.reporting.on_demand import write_report

    print(f"report: {write_report(config_path, env=env, project_path=project_path)}")


def init_command(folder: str) -> None:
    """Write a Kedro project into `folder` and print how to run it."""
    from judgeforge.project import write_project

    run_yaml = write_project(folder)
    print(
        f"{folder}: Kedro project written; in it run `judgeforge run -c {run_yaml.name}` "
        "or `kedro run`"
    )


def console_main() -> None:
    """Entry point of the installed `judgeforge` script."""
    sys.exit(main())
