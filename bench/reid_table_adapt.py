"""What the site adaptation is worth on the PETS09-S2L1 ReID pairs (``run.py reid-table``'s table, one more row).

The adaptation (``tracker/multicam/adaptation.py``: the camera's mean appearance of the people it sees,
subtracted from every feature) is learned the way a running site learns it: the pipeline tracks PETS09-S2L1
(public detections, OSNet, the identity registry on, no ground truth) and every finished track feeds the
camera's mean. The pairs file's crops (ground-truth boxes of that video) are then scored raw and through the
learned transform: mean same-/different-person cosine, their gap, and rank-1.

    .venv/bin/python bench/reid_table_adapt.py [--pairs bench/results/pets09_pairs.csv]

Prints the reid-table table (a row ``+site`` for the adapted features) and one line per row:
``reid_table model=M mean_same=S mean_diff=D gap=S-D rank1=R``. Centring changes the scale of cosines (every
pair moves down), so the gap and rank-1 are what compare; the registry itself uses a calibrated distance on
top (see the module docstring of adaptation.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tracker.commands.similarity import format_table, read_pairs, score_models  # noqa: E402
from tracker.config import RunConfig  # noqa: E402
from tracker.io.config_file import from_dict  # noqa: E402
from tracker.pipeline import Pipeline  # noqa: E402


def learn(data_dir: Path, model_dir: str | None):
    """Run the pipeline on PETS09-S2L1 with the registry on; return its learned ``SiteAdaptation``."""
    out = tempfile.mkdtemp(prefix="reid_table_adapt_")
    seq = data_dir / "PETS09-S2L1"
    cfg = from_dict(RunConfig, {
        "cameras": [{"id": "s2l1", "source": str(seq / "video" / "vtest.avi"),
                     "detections": str(seq / "det" / "det.txt"), "fps": 7}],
        "reid": {"providers": ["cpu"]}, "pipeline": {"status_interval": 0, **({"model_dir": model_dir}
                                                                             if model_dir else {})},
        "multicam": {"enabled": True}, "output": {"dir": out, "video": False, "events": False}})
    pipe = Pipeline(cfg)
    t0 = time.time()
    pipe.run(progress=False)
    adapt = pipe.registry.adapt
    adapt.refresh()
    print(f"# learned from {adapt.tracks_seen()} finished tracks in {time.time() - t0:.0f} s "
          f"(no ground truth)", file=sys.stderr)
    return adapt


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default=str(ROOT / "bench" / "results" / "pets09_pairs.csv"))
    ap.add_argument("--model", default="osnet_x0_25_msmt17")
    args = ap.parse_args(argv)
    data_dir = Path(os.environ.get("MCTRACK_DATA_DIR", ROOT.parent / "shared" / "data"))
    model_dir = os.environ.get("MCTRACK_MODEL_DIR")
    adapt = learn(data_dir, model_dir)
    ns = argparse.Namespace(model_dir=model_dir, data_dir=str(data_dir), providers="cpu", threads=0)
    pairs = read_pairs(args.pairs, data_dir)
    rows, info = score_models(pairs, [args.model], ns,
                              transforms={"+site": lambda e: adapt.transform("s2l1", e)})
    print(f"# .venv/bin/python bench/reid_table_adapt.py --pairs {os.path.relpath(args.pairs, ROOT)}   "
          f"({time.strftime('%Y-%m-%d')})")
    print(format_table([p.name for p in pairs], rows, info))
    for r in rows:
        print(f"reid_table model={r.model} mean_same={r.mean_same:.3f} mean_diff={r.mean_diff:.3f} "
              f"gap={r.mean_same - r.mean_diff:.3f} rank1={r.rank1:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
