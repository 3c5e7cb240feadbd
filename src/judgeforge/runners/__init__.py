"""Kedro runners judgeforge adds: `kedro run --runner judgeforge.runners.DaskRunner --env dask`."""

from judgeforge.runners.dask_runner import DaskRunner

__all__ = ["DaskRunner"]
