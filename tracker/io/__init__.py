"""Inputs and outputs around the core: MOTChallenge files, config files, result writers (sinks) and the live view."""
