"""What the identity console costs the pipeline: ms per tick with the console on vs off, and bytes per identity.

    .venv/bin/python bench/console_cost.py [--config configs/pets09_mc_public.yaml] [--repeats 2]

Runs the whole PETS09-MC sequence (files, not paced) with the live view on (output.http, port 0) and
output.console on or off, alternating; ms per tick is the loop's wall time over its ticks (the console's
work is on the frame writer thread, so what it costs the loop is CPU contention); the frame thread's
time in the console is reported apart. Bytes per identity: thumbnails (JPEG) plus bookkeeping, at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_once(config: str, console: bool, out: Path) -> dict:
    from tracker.io.sinks import console as console_sink
    from tracker.pipeline import Pipeline, load_run_config

    cfg = load_run_config(config, [f"output.dir={out}", "output.http=true", "output.http_port=0",
                                   f"output.console={'true' if console else 'false'}", "pipeline.status_interval=0"])
    spent = [0.0]
    orig = console_sink.ConsoleOutput.consume

    def timed(self, job):
        t = time.perf_counter()
        try:
            return orig(self, job)
        finally:
            spent[0] += time.perf_counter() - t

    console_sink.ConsoleOutput.consume = timed
    try:
        pipe = Pipeline(cfg)
        t0 = time.perf_counter()
        summary = pipe.run(progress=False)
        wall = time.perf_counter() - t0
        res = {"ticks": summary["ticks"], "ms_per_tick": 1000 * wall / max(1, summary["ticks"]),
               "console_ms_per_tick": 1000 * spent[0] / max(1, summary["ticks"])}
        c = pipe.sinks.console
        if c is not None:
            idents = list(c._ids.values())
            thumbs = sum(len(v.thumb or b"") for i in idents for v in i.visits)
            book = sum(200 + sum(120 + 24 * len(v.path) for v in i.visits) for i in idents)  # rough Python sizes
            res.update(identities=len(idents), thumb_bytes=thumbs / max(1, len(idents)),
                       book_bytes=book / max(1, len(idents)),
                       visits=sum(len(i.visits) for i in idents) / max(1, len(idents)))
        return res
    finally:
        console_sink.ConsoleOutput.consume = orig


def main() -> int:
    import logging

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/pets09_mc_public.yaml")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    runs: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for on in (False, True):
                runs[on].append(run_once(args.config, on, Path(tmp) / f"{r}_{on}"))
    print(f"# .venv/bin/python bench/console_cost.py --config {args.config} --repeats {args.repeats}")
    for on in (False, True):
        ms = [x["ms_per_tick"] for x in runs[on]]
        line = (f"console={'on ' if on else 'off'} ticks={runs[on][0]['ticks']} ms_per_tick median="
                f"{statistics.median(ms):.2f} runs={' '.join(f'{m:.2f}' for m in ms)}")
        if on:
            x = runs[on][-1]
            spent = statistics.median(r["console_ms_per_tick"] for r in runs[on])
            line += (f" frame_thread_console_ms_per_tick={spent:.3f}"
                     f" identities={x['identities']} visits_per_identity={x['visits']:.1f}"
                     f" thumbnail_bytes_per_identity={x['thumb_bytes']:.0f}"
                     f" bookkeeping_bytes_per_identity~{x['book_bytes']:.0f}")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
