"""The local backend (``backend: local``): one run config trained on this machine (CPU or one GPU) with TRL
1.16 and this project's sandboxed reward, no Ray, no vLLM, no DeepSpeed.

Where things are: ``mapping`` (run config -> TRL trainer and options; refuses what TRL cannot do the same
way), ``runner`` (the run from start to end), ``rundir`` (run directories, ``--resume``), ``builtin_model``
(``builtin:tiny-llama``, the download-free quickstart model), ``data`` (rows -> TRL columns),
``metrics`` (the ``metrics.jsonl`` schema), ``callbacks`` (metrics writer, progress bar), ``curve``
(``reward_curve.png`` and the end-of-run summary).
"""
