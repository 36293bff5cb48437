"""Scoring against ground truth: MOTChallenge HOTA / CLEAR / Identity (``mot``, trackeval's metric code) and
per-camera plus cross-camera scores for multi-camera runs (``multicam``). Needs the ``[eval]`` extra."""
