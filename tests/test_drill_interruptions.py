"""What the local drills do when they are stopped: by SIGTERM as a real process, by an error before or after the first
change. The exit code says whether anything was changed (4: nothing was, 5: something was, and it was torn down),
the report says which stage stopped the drill and what teardown removed, and nothing is left on the machine.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from runbooks import restore_drill, upgrade_drill
from temporaldb.drills import local_restore, local_upgrade
from temporaldb.drills.runbook import EXIT_FAILED, EXIT_REFUSED
from tests import drill_fixtures

RUNBOOKS = Path(__file__).resolve().parent.parent / "runbooks"
REACH_STAGE_SECONDS = 900.0  # generous: the machine is shared, and the stage comes after data generation
FINISH_SECONDS = 300.0


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """A folder the server account can enter even as root (pytest's temp root is private): the drill folder lands
    inside it, so what is left there is what the drill left behind."""
    folder = Path(tempfile.mkdtemp(prefix="temporaldb-sigterm-"))
    folder.chmod(0o755)
    yield folder
    for pid in drill_fixtures.processes_naming(folder):  # only after a failed test: servers the drill did not stop
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(folder, ignore_errors=True)


class Lines:
    """A child's stderr, read line by line on a thread (a pipe has no timeout), kept for the failure message."""

    def __init__(self, stream: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, fragment: str, timeout: float) -> str:
        """The first line containing `fragment`; fails if the stream ends or the time runs out first."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                pytest.fail(f"the drill ended before {fragment!r}:\n" + "\n".join(self.seen[-30:]))
            self.seen.append(line)
            if fragment in line:
                return line
        pytest.fail(f"no {fragment!r} after {timeout:.0f} s:\n" + "\n".join(self.seen[-30:]))

    def rest(self) -> list[str]:
        """Every line after the ones read so far (call once the child has exited)."""
        self._thread.join(timeout=30)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.seen
            if line is not None:
                self.seen.append(line)


# --- SIGTERM, as a scheduler sends it, after the first change ------------------------------------------------


@pytest.mark.parametrize(
    ("script", "extra", "running", "stages"),
    [
        # The source cluster is running from start_source on; bootstrap writes into it.
        ("restore_drill.py", [], "[bootstrap] ...", local_restore.STAGES),
        # source_load bootstraps and loads into the running source cluster.
        ("upgrade_drill.py", ["--source-major", "16"], f"] {local_upgrade.SOURCE_LOAD}", local_upgrade.STAGES),
    ],
    ids=["restore", "upgrade"],
)
def test_sigterm_after_the_first_change_tears_down_and_exits_5(
    script: str, extra: list[str], running: str, stages: tuple[str, ...], work_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "report.json"
    argv = [sys.executable, str(RUNBOOKS / script), "--local", "--apply", "--work-dir", str(work_dir)]
    command = [*argv, "--report", str(path), *extra]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            assert child.stderr is not None
            assert child.stdout is not None
            lines = Lines(child.stderr)
            lines.wait_for(running, REACH_STAGE_SECONDS)
            assert drill_fixtures.processes_naming(work_dir), "a cluster should be running when the signal is sent"
            child.send_signal(signal.SIGTERM)
            code = child.wait(timeout=FINISH_SECONDS)
            out = child.stdout.read()
        finally:
            if child.poll() is None:  # only when the test failed: never leave the drill running
                child.kill()
        log = "\n".join(lines.rest())
    assert code == EXIT_FAILED, log
    report = json.loads(path.read_text())
    _check_interrupted_report(report, running, stages, log)
    # Nothing left behind: no folder in the work dir, no server naming it.
    assert list(work_dir.iterdir()) == []
    assert drill_fixtures.processes_naming(work_dir) == {}
    assert f"exit {EXIT_FAILED}" in out


def _check_interrupted_report(report: dict[str, Any], running: str, stages: tuple[str, ...], log: str) -> None:
    """The report names the interrupted stage (the one running, or a later one), and a teardown that removed all."""
    names = [stage["name"] for stage in report["stages"]]
    assert report["changed"] is True, log
    assert report["verified"] is False
    assert "SIGTERM" in (report["error"] or ""), report["error"]
    interrupted = report["failed_stage"]
    assert interrupted in names, (interrupted, names)
    first_running = next(name for name in stages if name in running)
    assert stages.index(interrupted) >= stages.index(first_running), names
    failed = report["stages"][names.index(interrupted)]
    assert (failed["ok"], "SIGTERM" in failed["detail"]) == (False, True), failed
    assert all(stage["ok"] for stage in report["stages"][: names.index(interrupted)])
    teardown = report["stages"][-1]
    assert (teardown["name"], teardown["ok"]) == ("teardown", True), teardown
    assert teardown["seconds"] is not None
    assert "left_behind" not in report["details"]
    (removed,) = report["torn_down"]
    assert removed.startswith("local drill folder ")
    folder = Path(removed.removeprefix("local drill folder ").split(" (")[0])
    assert not folder.exists()


# --- an error before the first change: exit 4, and the report claims no change --------------------------------


def _crash(error: BaseException) -> Callable[..., Any]:
    def crash(*_: object, **__: object) -> Any:
        raise error

    return crash


@pytest.mark.parametrize(
    ("drill", "module", "seam"),
    [
        (restore_drill, local_restore, "wheel_binaries"),  # looked up before the drill folder is made
        (upgrade_drill, local_upgrade, "target_binaries"),
    ],
    ids=["restore", "upgrade"],
)
@pytest.mark.parametrize(
    "error", [RuntimeError("the binaries' lookup crashed"), KeyboardInterrupt()], ids=["error", "ctrl-c"]
)
def test_an_error_before_any_change_exits_4_and_claims_no_change(
    drill: Any,
    module: Any,
    seam: str,
    error: BaseException,
    work_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(module, seam, _crash(error))
    path = tmp_path / "report.json"
    argv = ["--local", "--apply", "--work-dir", str(work_dir), "--report", str(path), "--source-major", "16"]
    if drill is restore_drill:
        argv = argv[:-2]
    assert drill.main(argv) == EXIT_REFUSED
    report = json.loads(path.read_text())
    assert report["changed"] is False
    assert report["torn_down"] == []
    assert report["verified"] is False
    expected = str(error) or "interrupted (Ctrl-C)"
    assert expected in report["error"]
    assert list(work_dir.iterdir()) == []
    out, err = capsys.readouterr()
    assert "before any change" in out
    assert f"exit {EXIT_REFUSED}" in out
    assert "no change was made" in err


def test_an_error_after_the_drill_folder_is_made_exits_5_and_tears_it_down(
    work_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The data generator breaks inside the new drill folder: a change was made, so exit 5, and it is removed."""
    monkeypatch.setattr(local_restore, "generated_batches", lambda *_, **__: _crash(RuntimeError("generator broke")))
    path = tmp_path / "report.json"
    code = restore_drill.main(["--local", "--apply", "--work-dir", str(work_dir), "--report", str(path)])
    assert code == EXIT_FAILED
    report = json.loads(path.read_text())
    assert report["changed"] is True
    assert report["failed_stage"] == "prepare_data"
    assert "generator broke" in report["error"]
    assert [(stage["name"], stage["ok"]) for stage in report["stages"]] == [("prepare_data", False), ("teardown", True)]
    (removed,) = report["torn_down"]
    assert str(work_dir.resolve()) in removed
    assert list(work_dir.iterdir()) == []
    assert f"FAILED at prepare_data; rto_seconds=None rpo_seconds=None; exit {EXIT_FAILED}" in capsys.readouterr().out
