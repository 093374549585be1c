"""User-facing errors.

Anything raised as :class:`AcecoderError` is a problem with the user's input or environment (a bad file, a
malformed row, an impossible option). The CLI prints its message on one line and exits non-zero, without a
traceback. Everything else is a bug in this package and keeps its traceback.
"""


class AcecoderError(Exception):
    """A problem the user can fix; the message names the file, line or field at fault."""


class UsageError(AcecoderError):
    """Bad command-line usage (exit code 2, like click's own usage errors)."""


class InvalidConfig(AcecoderError):
    """A run-config value that cannot work; ``key`` is its dotted path (``resources.actor_gpus``), so that
    the loader can name the file of the ``extends`` chain that set it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key
        self.message = message
