"""Bringing runs kept by other trackers onto the experiments branch.

Each importer reads its source through that tracker's own client (imported only when
an import runs) and writes through the same ``lifecycle``/``Run`` calls as live logging,
so an imported run is an ordinary record. See ``labbook import`` in docs/cli.md.
"""
