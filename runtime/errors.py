"""The one exception type that the CLI turns into a single clear error line (exit code 2)."""


class EdgefillError(Exception):
    """Bad input or an unusable artifact: the message is shown to the user as one line."""
