"""Tools that use the server from outside, like aiortc's contrib/: nothing the running
server imports (tests/unit/test_import_graph.py checks it)."""
