"""Training runs: typed run configs, their OpenRLHF commands, and launching them on Ray.

Where things are: ``config`` (the run config schema and its checks), ``layered_yaml`` (strict YAML with
``extends``), ``openrlhf_cmd`` (config -> OpenRLHF 0.11.2 command), ``launch`` (Ray job or foreground run),
``reward_service`` (a reward service started for a run), ``backends`` (dispatch on ``backend``),
``sweep`` (ablation grids).
"""
