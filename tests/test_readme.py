"""The README's library snippets run as they are (the "Use as a library" section)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _snippets() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Use as a library", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_library_section_has_snippets():
    assert len(_snippets()) >= 3


@pytest.mark.parametrize("index", range(3))
def test_readme_snippet_runs(index, data_dir, model_dir):
    code = _snippets()[index]
    env = dict(os.environ, MCTRACK_DATA_DIR=str(data_dir), MCTRACK_MODEL_DIR=str(model_dir))
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip(), "each snippet prints its result"
    if index == 0:  # the printed values are the ones the comment in the README shows
        assert r.stdout.strip() == "[1 2] [0 1] [0 0]"
    if index == 2:  # two cameras, two people: each camera has its own global identity
        out = eval(r.stdout.strip())  # noqa: S307 - our own printed dict
        assert sorted(out) == ["door", "hall"] and all(len(v) == 1 and v[0] >= 1 for v in out.values())
