"""The one exception type for user mistakes: the CLI prints its message on one line and exits 2."""


class GlassboxError(ValueError):
    """A problem with the user's input; the message names the problem and the fix."""
