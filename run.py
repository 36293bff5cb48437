#!/usr/bin/env python3
"""Thin wrapper so ``python run.py ...`` works from a checkout; installed, the same is ``mctrack ...``."""

import sys

from tracker.cli import main

if __name__ == "__main__":
    sys.exit(main())
