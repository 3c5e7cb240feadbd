"""The `judgeforge` command: run a single run YAML, validate it, or ask a trained judge."""

from __future__ import annotations

import argparse
import logging
import sys

from judgeforge.config import ConfigError, load_run_config

# Errors a user can cause and fix; anything else is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError, ValueError)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the judgeforge command."""
    parser = argparse.ArgumentParser(prog="judgeforge", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the steps listed in run_steps of a run YAML")
    run.add_argument("-c", "--config", required=True, help="path to the run YAML")
    run.add_argument("-e", "--env", default=None, help="Kedro environment for catalog and credentials (default: local)")
    run.add_argument("--project-path", default=None, help="Kedro project folder (default: found from the current folder)")

    validate = commands.add_parser("validate", help="check a run YAML and list every problem")
    validate.add_argument("-c", "--config", required=True, help="path to the run YAML")

    preview = commands.add_parser("preview", help="build the generation plan, send its first calls, estimate the run")
    preview.add_argument("-c", "--config", required=True, help="path to the run YAML")
    preview.add_argument("-n", "--calls", type=int, default=5, help="how many planned calls to send (default 5)")
    preview.add_argument("-e", "--env", default=None, help="Kedro environment for catalog and credentials (default: local)")
    preview.add_argument("--project-path", default=None, help="Kedro project folder (default: found from the current folder)")

    predict = commands.add_parser("predict", help="score a CSV / Parquet / JSONL file with a trained judge")
    predict.add_argument("-m", "--model", required=True, help="the judge's folder (training.output.local_path/model_name)")
    predict.add_argument("-i", "--input", required=True, help="rows with the columns the judge's prompt template names")
    predict.add_argument("-o", "--output", required=True, help="where to write the rows with prediction and probability_<label> columns")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the judgeforge command line; return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "validate":
            config = load_run_config(args.config)
            print(f"{args.config}: valid (run_steps: {', '.join(config.run_steps)})")
        elif args.command == "run":
            run_command(args.config, args.env, args.project_path)
        elif args.command == "preview":
            from judgeforge.preview import preview_generation, print_preview

            print_preview(preview_generation(args.config, args.calls, args.env, args.project_path))
        elif args.command == "predict":
            predict_rows(args.model, args.input, args.output)
    except USER_ERRORS as error:
        print(f"judgeforge: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigError) else 1
    return 0


def predict_rows(model_dir: str, input_path: str, output_path: str) -> None:
    """Score a file of rows with a saved judge and print how many were scored."""
    from judgeforge.training import predict_command
    from judgeforge.training.loading import ModelLoadError

    try:
        count = predict_command(model_dir, input_path, output_path)
    except ModelLoadError as error:
        raise ValueError(str(error)) from None
    print(f"{output_path}: {count} rows scored")


def run_command(config_path: str, env: str | None, project_path: str | None) -> None:
    """Run every step of `run_steps` and print where the results are."""
    from judgeforge.config.run import judge_output_dir
    from judgeforge.sdk import pipeline_name, run_config

    config = load_run_config(config_path)
    run_config(config, pipeline_name(config), env=env, project_path=project_path)
    if config.data_generation is not None and "data_generation" in config.run_steps:
        print(f"dataset: {config.data_generation.dataset_path}")
    if config.training is not None and "training" in config.run_steps:
        print(f"judge: {judge_output_dir(config)}")


def console_main() -> None:
    """Entry point of the installed `judgeforge` script."""
    sys.exit(main())
