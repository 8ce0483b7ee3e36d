"""WORKERS=N's parent and workers (server/workers.py): what a worker is told by its
arguments, and how an exit is reported. The processes themselves are in
tests/integration/test_workers.py."""

from __future__ import annotations

import pytest

from server.config import Settings, SettingsError
from server.workers import describe, worker_settings


def test_a_worker_is_told_its_index_and_keeps_no_state_file() -> None:
    settings = worker_settings(Settings(workers=3, redis_url="redis://127.0.0.1/0"), ["--worker", "2"])
    assert (settings.worker, settings.state_file, settings.workers) == (2, None, 3)


@pytest.mark.parametrize(
    "argv", [["--worker", "3"], ["--worker", "-1"], ["--worker"], ["--help"], ["x", "0"]]
)
def test_other_arguments_are_a_settings_error(argv: list[str]) -> None:
    with pytest.raises(SettingsError, match="takes no arguments"):
        worker_settings(Settings(workers=3), argv)


def test_exits_are_described_by_code_or_signal() -> None:
    assert describe(2) == "exit code 2"
    assert describe(-9) == "killed by SIGKILL"
    assert describe(-200) == "killed by signal 200"
