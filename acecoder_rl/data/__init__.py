"""AceCode-87K rows in: loading, validation, hard-subset selection, decontamination and the ``prepare``
pipeline.

Heavy libraries (``datasets``, ``pyarrow``, ``matplotlib``) are imported inside the functions that need them,
so importing this package (and ``acecoder-rl --help``) stays fast.
"""

from acecoder_rl.data.decontaminate import (
    BenchmarkIndex,
    DecontaminationReport,
    benchmark_index,
    decontaminate,
)
from acecoder_rl.data.hard_subset import HardSubsetReport, UnmatchedModelWarning, select_hard
from acecoder_rl.data.loading import LineError, ValidationReport, load_acecode, validate_rows
from acecoder_rl.data.prepare import PrepareOptions, PrepareResult, prepare
from acecoder_rl.data.prompts import SYSTEM_PROMPTS, add_system_prompt
from acecoder_rl.data.schema import ErrorKind, RowError, validate_row
from acecoder_rl.data.stats import DatasetStats, compute_stats, plot_stats

__all__ = [
    "BenchmarkIndex",
    "DatasetStats",
    "DecontaminationReport",
    "ErrorKind",
    "HardSubsetReport",
    "LineError",
    "PrepareOptions",
    "PrepareResult",
    "RowError",
    "SYSTEM_PROMPTS",
    "UnmatchedModelWarning",
    "ValidationReport",
    "add_system_prompt",
    "benchmark_index",
    "compute_stats",
    "decontaminate",
    "load_acecode",
    "plot_stats",
    "prepare",
    "select_hard",
    "validate_row",
    "validate_rows",
]
