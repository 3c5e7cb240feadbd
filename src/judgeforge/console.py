"""What a run prints: one short line per node, progress of the long stages, and a closing summary.

Kedro's per-dataset "Loading/Saving" lines and its per-node signature lines are off by the
project's logging config (conf/logging.yml); `--verbose` (`kedro run --verbose`,
`judgeforge run --verbose`) turns them, and the datasets library's save bars, back on.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import rich
from kedro.framework.hooks import hook_impl
from rich.table import Table

from judgeforge import progress
from judgeforge.datasets.llm_client import DeferredLLMClient
from judgeforge.errors import VERBOSE_ENV_VAR, verbose_from_environment
from judgeforge.llm.types import Usage

logger = logging.getLogger(__name__)

# Kedro loggers that conf/logging.yml raises to WARNING; --verbose lowers them back to INFO.
QUIET_LOGGERS = (
    "kedro.io",
    "kedro.pipeline.node",
    "kedro.runner",
    "kedro.framework.session",
    "kedro.framework.project",
    "distributed",
)
# Width of the log lines when stdout is not a terminal (rich's default there is 80).
LOG_FILE_COLUMNS = 120
# Reports saved during a run, by catalog name, that the summary reads.
SUMMARY_REPORTS = ("generation_report", "labelling_report", "training_metrics")
# Folders the summary points at, by catalog name; the first one saved wins per row.
OUTPUT_ROWS = {
    "dataset": ("final_dataset", "labelled_dataset", "generated_dataset"),
    "judge": ("judge_model",),
    "diagnostics": ("diagnostics_summary",),
}


def restore_verbose_logging() -> None:
    """Bring back Kedro's per-dataset and per-node INFO lines for this process and its runs."""
    # set for the process and the runs it starts
    os.environ[VERBOSE_ENV_VAR] = "1"
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)


def widen_log_file_lines() -> None:
    """Give Kedro's rich log handler LOG_FILE_COLUMNS when stdout is a file or pipe and COLUMNS is unset.

    rich lays a non-terminal out at 80 columns, which folds every progress line into three or four.
    """
    console = rich.get_console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = LOG_FILE_COLUMNS


def quiet_library_progress_bars() -> None:
    """Turn off the datasets / Hugging Face / transformers tqdm bars (saving shards, loading weights)."""
    import datasets
    import huggingface_hub.utils

    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()  # transformers reads this state when imported
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


class ConsoleHook:
    """Names each node as it starts, keeps the progress display in step, and closes with a summary."""

    def __init__(self) -> None:
        self._catalog: Any = None
        self._node_count = 0
        self._started_nodes = 0
        self._reports: dict[str, Any] = {}
        self._saved: list[str] = []
        self._clients: dict[int, DeferredLLMClient] = {}

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Count the nodes, widen a log file's lines and, unless verbose, silence library progress bars."""
        self._reports, self._saved, self._clients, self._started_nodes = {}, [], {}, 0
        self._catalog = catalog
        self._node_count = len(pipeline.nodes)
        widen_log_file_lines()
        if verbose_from_environment():
            restore_verbose_logging()
        else:
            quiet_library_progress_bars()

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        """Log `[i/n] node` (the node's name alone on a Dask worker) and name the stages it opens."""
        self._started_nodes += 1
        if self._node_count:
            logger.info("[%d/%d] %s", self._started_nodes, self._node_count, node.name)
        else:  # no pipeline run in this process: a DaskRunner task, counted by the runner
            logger.info("%s", node.name)
        progress.set_current_node(node.name)

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        progress.set_current_node(None)

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        """Remember every LLM client the run loaded, to add up the calls and cost of those it used."""
        if isinstance(data, DeferredLLMClient):
            self._clients[id(data)] = data

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        """Keep the reports the summary reads and the names of what was written."""
        self._saved.append(dataset_name)
        if dataset_name in SUMMARY_REPORTS:
            self._reports[dataset_name] = data

    @hook_impl
    def on_node_error(self) -> None:
        progress.close_open_stages()
        progress.set_current_node(None)

    @hook_impl
    def on_pipeline_error(self) -> None:
        progress.close_open_stages()

    @hook_impl
    def after_pipeline_run(self) -> None:
        """Print where the outputs are, what was delivered, how good the judge is and what it cost."""
        # a client no node called was never built, and reading its usage must not build it
        built = [client.built() for client in self._clients.values()]
        usages = [client.usage for client in built if client is not None]
        table = summary_table(self._reports, self._locations(), usages)
        if table.row_count:
            rich.get_console().print(table)

    def _locations(self) -> dict[str, str]:
        """Return the folders and files this run wrote that a user opens next, by summary row."""
        locations = {}
        for row, names in OUTPUT_ROWS.items():
            saved = next((name for name in names if name in self._saved), None)
            location = saved and dataset_location(self._catalog, saved)
            if location:
                locations[row] = location if row != "diagnostics" else str(Path(location).parent)
        html = [dataset_location(self._catalog, name) for name in self._saved]
        reports = [location for location in html if location and location.endswith(".html")]
        if reports:
            locations["report"] = reports[-1]
        return locations


def dataset_location(catalog: Any, name: str) -> str | None:
    """Return the path or URL a catalog entry writes to, relative to the current folder when inside it."""
    dataset = catalog.get(name) if catalog is not None else None
    describe = getattr(dataset, "_describe", None)
    described = describe() if describe else {}
    location = described.get("filepath") or described.get("path")
    if not location:
        return None
    location = str(location)
    if "://" in location:
        return location
    try:
        return str(Path(location).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return location


def summary_table(reports: dict[str, Any], locations: dict[str, str], usages: list[Usage]) -> Table:
    """Return the closing table: outputs, delivered counts, the judge's quality, calls and cost."""
    table = Table(title="judgeforge run", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("result")
    generation = reports.get("generation_report")
    if generation:
        per_class = " · ".join(
            f"{name} {counts['delivered']}/{counts['requested']}"
            for name, counts in generation["per_class"].items()
        )
        table.add_row(
            "synthetic examples",
            f"{generation['delivered_total']}/{generation['requested_total']} delivered "
            f"({per_class}), {generation['rejected_total']} rejected",
        )
    labelling = reports.get("labelling_report")
    if labelling and labelling.get("status") == "ok":
        agreement = labelling["agreement"]["overall"]
        rate = f"{agreement['rate']:.1%}" if agreement["rate"] is not None else "n/a"
        table.add_row("judge-generator agreement", f"{rate} of {agreement['compared']} rows")
    metrics = reports.get("training_metrics")
    if metrics:
        from judgeforge.pipelines.training.nodes import BASE_MODEL, FINE_TUNED

        table.add_row(
            "judge macro-F1",
            f"{metrics[FINE_TUNED]['macro_f1']:.3f} (zero-shot base {metrics[BASE_MODEL]['macro_f1']:.3f}, "
            f"lift {metrics['lift']['macro_f1']:+.3f})",
        )
    if usages:
        table.add_row("LLM calls", usage_line(usages))
    for row in ("dataset", "judge", "diagnostics", "report"):
        if row in locations:
            table.add_row(row, locations[row])
    return table


def usage_line(usages: list[Usage]) -> str:
    """Return calls, cache hits, tokens and cost added over the run's clients."""
    calls = sum(u.requests for u in usages)
    hits = sum(u.cache_hits for u in usages)
    tokens = sum(u.input_tokens + u.output_tokens for u in usages)
    cost = sum(u.cost_usd for u in usages)
    priced = all(u.priced for u in usages)
    cost_text = f"${cost:.4f}" if priced else f"${cost:.4f} (some models have no price)"
    return f"{calls} calls, {hits} cache hits, {tokens:,} tokens, {cost_text}"
