"""Stage outputs that the report reads: saved like their kedro-datasets type, loaded as None when absent.

The reporting pipeline takes these entries by their real names, so in one `kedro run` Kedro
orders it after the stages that write them; a stage that did not run (now or ever) leaves its
file absent, and the report shows that instead of failing.
"""

from __future__ import annotations

from typing import Any

from kedro_datasets.json import JSONDataset as _JSONDataset
from kedro_datasets.pandas import CSVDataset as _CSVDataset
from kedro_datasets.pandas import ParquetDataset as _ParquetDataset
from kedro_datasets.yaml import YAMLDataset as _YAMLDataset

from judgeforge.run_reports import failed_run_placeholder


class _AbsentReadsAsNone:
    """Loads None when the file does not exist; everything else is the base dataset's."""

    def load(self) -> Any:
        return super().load() if self.exists() else None  # type: ignore[misc]


class JSONDataset(_AbsentReadsAsNone, _JSONDataset):
    """`json.JSONDataset` whose missing file loads as None."""


class ReportDataset(JSONDataset):
    """A run's JSON report file (`*_report`, `*_summary`) that exists only as a report.

    The placeholder a failed run leaves in place of a report it did not write
    (judgeforge.run_reports) is not that report: it loads as None, and Kedro, which skips a node
    whose outputs exist (`kedro run --only-missing-outputs`), runs the stage that writes it again.
    """

    def _exists(self) -> bool:
        return super()._exists() and not failed_run_placeholder(_JSONDataset.load(self))


class ParquetDataset(_AbsentReadsAsNone, _ParquetDataset):
    """`pandas.ParquetDataset` whose missing file loads as None."""


class CSVDataset(_AbsentReadsAsNone, _CSVDataset):
    """`pandas.CSVDataset` whose missing file loads as None."""


class YAMLDataset(_AbsentReadsAsNone, _YAMLDataset):
    """`yaml.YAMLDataset` whose missing file loads as None."""
