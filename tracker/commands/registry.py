"""``registry``: look into and edit the identity store that ``multicam.store`` names.

    python run.py registry list --store FILE
    python run.py registry purge --store FILE --id GID [--id GID ...]
    python run.py registry topology --store FILE [--config RUN_CONFIG]

``FILE`` is the SQLite file itself (a relative ``multicam.store`` is under ``output.dir``).
``purge`` deletes identities with their appearance summaries; a pipeline running on the same store
drops them at its next save instead of writing them back, and forgets them then (see
``tracker.multicam.store``).
"""

from __future__ import annotations

import argparse
import sqlite3
import time

from tracker.errors import UserError


def cmd_list(args: argparse.Namespace) -> int:
    from tracker.multicam.store import format_duration, list_identities, store_info

    now = time.time()
    info = store_info(args.store)
    if info["saved_at"] is None:
        print(f"{args.store}: empty (nothing saved yet)")
        return 0
    rows = list_identities(args.store, now=now)
    print(f"{'gid':>8}  {'last seen':>10}  {'last camera':<16}  {'summaries':>9}")
    for r in rows:
        ago = format_duration(r["age"]) + " ago"
        print(f"{r['gid']:>8}  {ago:>10}  {r['last_camera'] or '-':<16}  {r['summaries']:>9}")
    pending = (f"; {info['purged_pending']} purged id(s) kept until the next save, so that a running pipeline "
               "forgets them"
               if info["purged_pending"] else "")
    print(f"{len(rows)} identities in {args.store}, saved {format_duration(now - info['saved_at'])} ago, "
          f"next id {info['next_id']}{pending}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from tracker.io import console_store
    from tracker.io.console import console_store_path
    from tracker.multicam.store import list_identities, purge_identity

    held = {r["gid"]: r for r in list_identities(args.store)}
    unknown = [g for g in dict.fromkeys(args.ids) if g not in held]
    if unknown:
        raise UserError(f"no identity {', '.join(map(str, unknown))} in {args.store}; nothing purged "
                        f"(see: run.py registry list --store {args.store})")
    thumbs_path = console_store_path(args.store)
    for gid in dict.fromkeys(args.ids):
        if purge_identity(args.store, gid):
            print(f"purged identity {gid} ({held[gid]['summaries']} appearance summaries) from {args.store}")
        else:  # a running pipeline rewrote the store since it was listed, without it
            print(f"identity {gid} was already gone from {args.store}")
        try:  # the identity console's thumbnails beside the store; a running console drops the card within 1 s
            n = console_store.purge(thumbs_path, gid)
        except (OSError, sqlite3.Error) as exc:
            raise UserError(f"thumbnails of identity {gid} in {thumbs_path} not deleted: {exc}") from None
        if n:
            print(f"deleted {n} thumbnail(s) of identity {gid} from {thumbs_path}")
    print("a pipeline running on this store forgets purged identities at its next save (multicam.save_interval) "
          "and does not write them back")
    return 0


def topology_yaml(learned: dict) -> str:
    """The learned topology as ``multicam:`` YAML (``IdentityRegistry.learned_topology()``), with the evidence
    of every camera pair as comments, ready to check and paste into a config."""
    lines = ["# learned from confident hand-overs (run.py registry topology); check before copying", "multicam:"]
    overlaps = [p for p in learned["overlaps"]]
    lines.append("  overlaps: [" + ", ".join(f"[{a}, {b}]" for a, b in overlaps) + "]")
    links = learned["links"]
    lines.append("  links:" + ("" if links else " []"))
    for lk in links:
        lines.append(f"    - {{a: {lk.a}, b: {lk.b}, min_travel: {lk.min_travel:g}, max_travel: {lk.max_travel:g}}}")
    lines.append("# evidence per camera pair (gap = time from the last sighting in a to the first in b; <= 0: both at "
                 "once):")
    for r in learned["pairs"]:
        travel = (f"travel {r['travel_min']:.1f}/{r['travel_median']:.1f}/{r['travel_max']:.1f} s (min/median/max)"
                  if r["travel_median"] is not None else "no travel times")
        kind = r["learned"] or "not yet"
        written = "; the written entry for this pair is used" if r.get("written") else ""
        lines.append(f"#   {r['a']} - {r['b']}: {r['handovers']} hand-overs, {r['simultaneous']} simultaneous, "
                     f"{travel}; learned: {kind}{written}")
    if not learned["pairs"]:
        lines.append("#   none yet")
    return "\n".join(lines) + "\n"


def cmd_topology(args: argparse.Namespace) -> int:
    from tracker.multicam.config import MulticamConfig
    from tracker.multicam.registry import IdentityRegistry
    from tracker.multicam.store import load_registry

    mc = MulticamConfig(enabled=True)
    if args.config:
        from tracker.pipeline import load_run_config

        mc = load_run_config(args.config).multicam
    loaded = load_registry(args.store)
    site = (loaded[0].get("site") or {}) if loaded else {}
    if not site.get("topology"):
        print(f"# {args.store}: no hand-over evidence saved yet (multicam.learn_topology on, and a save since)")
        return 0
    reg = IdentityRegistry(mc)
    if reg.topology is None:
        raise UserError("multicam.learn_topology is off in that config: nothing learned is used")
    reg.topology.import_state(site["topology"])
    reg._apply_topology()
    print(topology_yaml(reg.learned_topology()), end="")
    return 0


def register(subparsers) -> None:
    """Add the ``registry`` subcommand (``list``, ``purge``) to an argparse subparsers object."""
    r = subparsers.add_parser(
        "registry", help="list or purge the identities saved in a registry store (multicam.store)",
        description="The identity store of multicam.store (SQLite): per identity its global id, when and in "
                    "which camera it was last seen, and its appearance summaries (biometric data). Identities "
                    "unseen for multicam.memory_seconds are dropped when a pipeline restores or saves it.")
    sub = r.add_subparsers(dest="registry_command", required=True)
    store_help = "the store file (a relative multicam.store is under output.dir)"
    ls = sub.add_parser("list", help="one line per stored identity: id, last seen, last camera, summaries")
    ls.add_argument("--store", required=True, help=store_help)
    ls.set_defaults(func=cmd_list)
    p = sub.add_parser(
        "purge", help="delete identities and their appearance summaries",
        description="Delete identities and their appearance summaries from the store. Every id must be in it "
                    "(else nothing is deleted, exit 2). A pipeline running on this store keeps them in memory "
                    "until its next save (every multicam.save_interval seconds, and at shutdown): that save "
                    "drops them instead of writing them back, and the pipeline forgets them (its tracks of "
                    "that person get new ids).")
    p.add_argument("--store", required=True, help=store_help)
    p.add_argument("--id", dest="ids", type=int, action="append", required=True, metavar="GID",
                   help="global id to delete (repeat for several)")
    p.set_defaults(func=cmd_purge)
    t = sub.add_parser(
        "topology", help="print the camera topology learned from hand-overs, as multicam YAML",
        description="Print the overlaps and links (with travel-time windows) the registry learned from confident "
                    "hand-overs (multicam.learn_topology), in the YAML form of multicam.overlaps and "
                    "multicam.links, with the evidence per camera pair as comments. Check it, then copy it into "
                    "the config: written entries win over learned ones.")
    t.add_argument("--store", required=True, help=store_help)
    t.add_argument("--config", default=None, help="run config whose multicam settings (written topology, "
                                                  "topology_min_handovers) apply; default: the defaults")
    t.set_defaults(func=cmd_topology)
