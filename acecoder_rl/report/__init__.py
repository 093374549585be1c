"""Training reports: curves and a comparison table from the logs of the local backend or OpenRLHF.

Heavy libraries (``matplotlib``, ``tensorboard``) are imported inside the functions that need them.
"""

from acecoder_rl.report.build import build_report
from acecoder_rl.report.load import load_runs
from acecoder_rl.report.runs import METRICS, Run, Series

__all__ = ["METRICS", "Run", "Series", "build_report", "load_runs"]
