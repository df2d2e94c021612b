"""One exception type for every user-facing problem: the CLI prints it on one line and exits 2."""


class NesscanError(Exception):
    """A problem with the user's input or files, reported as a one-line message."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))
