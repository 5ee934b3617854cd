"""The one exception type the CLI turns into a one-line message and exit code 1."""


class CliError(Exception):
    """An expected failure with a message that tells the user what to do."""
