"""Training runs: typed run configs, and the two backends that run them.

Where things are: ``config`` (the run config schema, the checks every backend shares, dispatch to the
backend's own), ``layered_yaml`` (strict YAML with ``extends``), ``backends`` (run a config on its
``backend``), ``sweep`` (ablation grids), and one package per backend, side by side: ``openrlhf/``
(OpenRLHF 0.11.2 on a Ray cluster or in the foreground) and ``local/`` (TRL on this machine).
"""
