"""Errors a user can cause. The CLI prints their message in one line, no traceback."""


class UserError(Exception):
    """A problem with user input: a bad path, a malformed file, a bad config value."""
