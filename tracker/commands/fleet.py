"""``identity-service``: the one process that gives people global ids across every edge of a site.

    python run.py identity-service --config central.yaml [--set fleet.lateness=2 ...]

``central.yaml`` holds ``fleet`` (broker, site, ``cameras``: every camera id of the site), the site
topology in ``multicam`` (overlaps, links, homographies, ``store``), and ``output`` (the site's
``<camera>.txt`` and ``events.jsonl``; ``http: true`` serves ``/metrics`` and ``/healthz``). Edges run
``python run.py run --config edge.yaml`` with ``fleet.enabled: true``.
"""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger("mctrack")


def load_service_config(path: str, overrides: list[str] | None = None):
    from tracker.config import RunConfig
    from tracker.fleet.service import check_service_config
    from tracker.io.config_file import load_yaml

    return load_yaml(path, RunConfig, overrides, check=check_service_config)


def cmd_identity_service(args: argparse.Namespace) -> int:
    from tracker.commands.signals import stop_on_signals
    from tracker.fleet.service import IdentityService

    cfg = load_service_config(args.config, args.set)
    service = IdentityService(cfg)

    with stop_on_signals(service.stop, "checkpointing and stopping"):
        summary = service.run(max_seconds=args.seconds, until_ended=args.until_ended)
    print(f"identity service stopped: {summary['ticks']} ticks, {summary['observations']} observations "
          f"({summary['duplicates']} duplicates, {summary['malformed']} malformed skipped), "
          f"{summary['identities']} identities held, next id {summary['next_id']}, "
          f"cpu {summary['cpu_seconds']:.2f} s")
    return 0


def register(sub) -> None:
    s = sub.add_parser("identity-service", help="the site's identity service: consumes every edge's tracks "
                                                "over the broker, sends global ids back")
    s.add_argument("--config", required=True, help="central YAML (fleet: broker, site, cameras; multicam: topology)")
    s.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    s.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (tests)")
    s.add_argument("--until-ended", action="store_true",
                   help="stop once every camera's edge has said its source ended (file replays, benchmarks)")
    s.set_defaults(func=cmd_identity_service)
