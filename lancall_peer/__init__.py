"""The Python peer: a WebRTC client of the /rtc protocol (aiortc) for tests, benches and
scripts, that calls, answers, joins group calls, opens data links and sends and
receives files from the command line (`python -m lancall_peer --help`). Its own package,
built and installed with the server's, which never imports it
(tests/unit/test_import_graph.py)."""
