"""Helpers shared by the tests and the benchmarks in bench/ (no fixtures: those stay in conftest.py).

Why a package under tests/ rather than a top-level one: it is test code, so it stays out of the
installed distribution (setuptools ships only `server`) and out of the repository root. pytest finds
it through `pythonpath = ["."]` (pyproject.toml); a bench script puts the repository root on sys.path
before importing it, one line each.

* `net`: free ports, whether a port is closed, waiting for a port to accept.
* `servers`: `python -m server` as a subprocess (environment, start until the banner, stop, run to exit).
* `liveserver`: the app in the test's own event loop over real TLS (`LiveServer`).
* `chromium`: how Chromium is launched, with the project's arguments (tests and benchmarks alike).
* `benchproc`, `wsclient`: for the benchmarks, the server subprocess from any checkout with /proc
  figures (CPU, RSS, machine load), and a cheap browser-like /rtc client on asyncio protocols.
* `polling`: wait until a condition holds, bounded in time.
* `workerprocs`: the WORKERS processes in /proc (a parent's children, which one holds a connection).
* `browseruser`, `rtcclient`, `hubtools`, `fuzzing`: a browser user, a raw /rtc client, hub doubles,
  and the fuzzing strategies shared by the unit and integration fuzz tests.
"""
