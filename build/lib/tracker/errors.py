"""Errors a user can cause. The CLI prints their message in one line, no traceback."""

from streams.errors import SourceError


class UserError(Exception):
    """A problem with user input: a bad path, a malformed file, a bad config value."""


#: Every error type that means "the user asked for something that cannot be done": ``except USER_ERRORS``.
USER_ERRORS = (UserError, SourceError)
