"""Temporary alias of :mod:`acecoder_rl.reward.interface` for ``reward/engine.py`` only, which is being
rewritten on another branch and still imports ``validate_batch`` from here; delete this file when its
import names ``reward.interface``. Everything else imports from :mod:`acecoder_rl.reward.interface`."""
from acecoder_rl.reward.interface import validate_batch

__all__ = ["validate_batch"]
