"""Reports that say which run wrote them, and a failed run that says so in place of its reports.

Every JSON report a run saves to a file (outputs named `*_report` / `*_summary`) gets a `run`
entry: the Kedro run id (its session id), when the run started, its pipelines and `status: completed`. When
a run fails, each report it had yet to write is replaced by one holding only that entry with
`status: failed` and the error's line, so a report left by an earlier run never looks current.
The report datasets (judgeforge.datasets.optional.ReportDataset) do not count such a placeholder
as the report: `kedro run --only-missing-outputs` runs its stage again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import MemoryDataset

from judgeforge.errors import one_line, user_error_in

log = logging.getLogger(__name__)

REPORT_SUFFIXES = ("_report", "_summary")
RUN_KEY = "run"
FAILED = "failed"


class RunReportHook:
    """Stamps the run on each report file and leaves a failure report for each one a failed run did not write."""

    def __init__(self) -> None:
        self._run: dict[str, Any] = {}
        self._reports: set[str] = set()
        self._written: set[str] = set()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Note the run and which of its outputs are report files."""
        self._run = {
            "run_id": run_params.get("run_id"),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "pipelines": list(run_params.get("pipeline_names") or ["__default__"]),
        }
        self._reports = {name for name in pipeline.all_outputs() if is_report_file(name, catalog)}
        self._written = set()

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node: Any) -> None:
        """Add the run entry to a report about to be saved."""
        if dataset_name in self._reports and isinstance(data, dict):
            data[RUN_KEY] = {**self._run, "status": "completed"}
            self._written.add(dataset_name)

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        """Replace each report this run did not write by a report that says the run failed."""
        cause = user_error_in(error) or error
        failed = {
            RUN_KEY: {**self._run, "status": FAILED, "error": one_line(cause).splitlines()[0]},
        }
        for name in sorted(self._reports - self._written):
            if written_unstamped(name, catalog):
                continue  # a DaskRunner worker wrote it in this run: its hooks do not stamp
            try:
                catalog.save(name, failed)
            except Exception as save_error:  # noqa: BLE001 -- the run's own error is the one to report
                log.warning("could not mark %s as failed: %s", name, save_error)


def failed_run_placeholder(report: Any) -> bool:
    """Return whether a saved report is the placeholder a failed run left in place of the report."""
    run = report.get(RUN_KEY) if isinstance(report, dict) else None
    return isinstance(run, dict) and run.get("status") == FAILED and set(report) == {RUN_KEY}


def written_unstamped(name: str, catalog: Any) -> bool:
    """Return whether a report file holds a report with no `run` entry (one no hook of a run saw)."""
    try:
        report = catalog.load(name)
    except Exception:  # noqa: BLE001 -- absent or unreadable: it is replaced
        return False
    return isinstance(report, dict) and RUN_KEY not in report


def is_report_file(name: str, catalog: Any) -> bool:
    """Return whether a dataset is a report saved to a file (not an in-memory intermediate)."""
    if not name.endswith(REPORT_SUFFIXES) or name not in catalog:
        return False
    return not isinstance(catalog.get(name), MemoryDataset)
