"""Cross-camera identities: the identity registry (``registry``), its config and its SQLite store (``store``)."""
