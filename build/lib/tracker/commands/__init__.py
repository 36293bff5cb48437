"""Command-line subcommands, each module exporting ``register(subparsers)``."""
