"""acecoder-rl: RL fine-tuning of code LLMs with sandboxed, test-based rewards.

Layout: ``data`` (AceCode-87K rows in), ``reward`` (the sandboxed reward engine), ``train`` (trainer
back-ends), ``cli`` (the ``acecoder-rl`` command).
"""

__version__ = "0.1.0"
