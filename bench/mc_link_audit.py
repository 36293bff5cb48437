"""Audit the registry's links on PETS09-MC against the ground truth: which kinds of link go wrong.

Replays a registry variant of ``bench/mc_replay.py`` over the recorded per-camera tracks. Each track is
labelled with the ground-truth person it covers most (IoU >= 0.5, majority of its rows; no ground truth is
used by the registry). Every time a new track takes an existing identity, the link is counted by kind and
judged against the person that identity held most so far:

- ``present``: the identity is in view in an overlapping camera at that moment;
- ``same``: the identity was last seen in the same camera (a re-entry, or a track the tracker broke);
- ``cross``: it was last seen in another camera.

A wrong link also makes later correct-looking links of its identity count as wrong (the identity's majority
person is what they are judged against), so the counts overstate propagated errors, not first errors.

    .venv/bin/python bench/mc_link_audit.py [--config configs/pets09_mc.yaml] [--variants full full-reentry]

Prints one line per variant and kind: ``links variant=V kind=K total=N wrong=W``.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import mc_replay  # noqa: E402

from tracker.multicam.registry import IdentityRegistry  # noqa: E402
from tracker.pipeline import load_run_config  # noqa: E402


def audit(data: dict, mc, people: dict) -> dict:
    reg = IdentityRegistry(mc)
    held: dict = collections.defaultdict(collections.Counter)  # identity -> people of the tracks it was given
    counts: dict = {k: [0, 0] for k in ("present", "same", "cross")}
    resolve = reg._resolve

    def spy(new, now):
        before = {g: (i.last_camera, bool(reg._present(i, now))) for g, i in reg.identities.items()}
        resolve(new, now)
        for t in new:
            person = people.get((t.camera, t.local_id), -1)
            if t.linked and t.identity in before:
                last, present = before[t.identity]
                kind = "present" if present else "same" if last == t.camera else "cross"
                majority = held[t.identity].most_common(1)[0][0] if held[t.identity] else None
                counts[kind][0] += 1
                counts[kind][1] += majority != person
            held[t.identity][person] += 1

    reg._resolve = spy
    for now, per_cam, emb in data["ticks"]:
        reg.update(now, {c: o for c, (_, o) in per_cam.items()}, emb)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "pets09_mc_public.yaml"))
    ap.add_argument("--variants", nargs="+", default=["full", "full-reentry"])
    args = ap.parse_args(argv)
    os.environ.setdefault("MCTRACK_DATA_DIR", str(ROOT.parent / "shared" / "data"))
    gt_root = Path(os.environ["MCTRACK_DATA_DIR"]) / "PETS09-MC"
    data = mc_replay.record(args.config, [])
    people = {key: v.most_common(1)[0][0] for key, v in mc_replay.track_votes(data, gt_root).items()}
    todo = mc_replay.variants(load_run_config(args.config).multicam)
    print(f"# .venv/bin/python bench/mc_link_audit.py --config {os.path.relpath(args.config, ROOT)} "
          f"--variants {' '.join(args.variants)}")
    for name in args.variants:
        for kind, (total, wrong) in audit(data, todo[name], people).items():
            print(f"links variant={name} kind={kind} total={total} wrong={wrong}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
