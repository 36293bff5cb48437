"""``eval-mc``: per-camera and cross-camera scores of a multi-camera result folder.

    python run.py eval-mc --gt-root DIR --results DIR [--cameras cam1 cam2 ...]

See ``tracker.scoring.multicam`` for what each row means.
"""

from __future__ import annotations

import argparse


def cmd_eval_mc(args: argparse.Namespace) -> int:
    from tracker.scoring.multicam import evaluate_multicam, format_multicam

    print(format_multicam(evaluate_multicam(args.gt_root, args.results, args.cameras)))
    return 0


def register(subparsers) -> None:
    """Add the ``eval-mc`` subcommand to an argparse subparsers object."""
    e = subparsers.add_parser(
        "eval-mc", help="per-camera and cross-camera HOTA/IDF1 of multi-camera results (global ids)",
        description="Score RESULTS/<cam>.txt against GT_ROOT/<cam>/gt/gt.txt for every camera (HOTA, DetA, AssA, "
                    "IDF1, MOTA, IDSW), combine the cameras, and score all cameras concatenated into one sequence "
                    "so identities are matched jointly across cameras (gt ids are global; result ids as written). "
                    "Also prints distinct predicted vs true identities over all cameras.")
    e.add_argument("--gt-root", required=True, help="folder with <cam>/gt/gt.txt (e.g. ../shared/data/PETS09-MC)")
    e.add_argument("--results", required=True, help="folder with <cam>.txt result files")
    e.add_argument("--cameras", nargs="+", help="cameras to score, in concatenation order "
                                                "(default: every result file with a gt, sorted)")
    e.set_defaults(func=cmd_eval_mc)
