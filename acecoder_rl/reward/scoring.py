"""Temporary alias of :mod:`acecoder_rl.reward.shaping` for ``reward/engine.py`` only, which is being
rewritten on another branch and still imports ``shape`` from here; delete this file when its import names
``reward.shaping``. Everything else imports from :mod:`acecoder_rl.reward.shaping`."""
from acecoder_rl.reward.shaping import shape

__all__ = ["shape"]
