"""Errors a user can cause with a video source. ``streams`` imports nothing from ``tracker``."""


class SourceError(Exception):
    """A source that cannot be used as given: a missing or corrupt file, an empty folder, a bad URL
    or option. The command line prints the message in one line, as it does for ``tracker.errors.UserError``."""
