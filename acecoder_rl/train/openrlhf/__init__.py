"""The OpenRLHF backend (``backend: openrlhf``): one run config as an OpenRLHF 0.11.2 run, submitted to a Ray
cluster as a job or run in the foreground on this machine, with Ray, vLLM and DeepSpeed.

Where things are: ``checks`` (what OpenRLHF needs of a run config: GPU layout, batch sizes, paths, a started
service's options; refused naming the key), ``layout`` (roles and their GPUs, defaults filled in),
``command`` (run config -> ``python3 -m openrlhf.cli.train_ppo_ray`` flags and the reward plug-in's
environment), ``launch`` (the run from start to end: Ray job or foreground process), ``reward_service`` (a
reward service the run starts for itself), ``prepare`` (the ``data prepare`` command that writes
``data.path``).
"""
