"""No process and no directory outlives a lab run: after a normal end, Ctrl-C (SIGINT),
SIGTERM at a random moment, and the crash of any child.

Each run is a real `pgslots lab` subprocess with its own TMPDIR and its own working
directory (both must be empty afterwards: kombu's filesystem transport once left its
`control/` folder in the working directory); a watcher thread records every descendant
while it runs, and none of them may be alive afterwards.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import sigint_as_on_a_terminal

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LAB = [sys.executable, "-m", "pgslots", "lab", "--scenario", "baseline", "--duration", "0.25"]


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, start time, state) of a live process, or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return int(fields[1]), fields[19], fields[0]


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


class Watcher:
    """Records every descendant of the lab process while it runs (a thread polling /proc),
    so that leftovers can be found after it exits even when they rewrite their command
    line or environment (postgres and gunicorn do, for `ps`)."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.seen: dict[tuple[int, str], str] = {}  # (pid, start time) -> command line
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll()
            time.sleep(0.05)

    def poll(self) -> None:
        parents: dict[int, int] = {}
        starts: dict[int, str] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                stat = _stat(int(entry.name))
                if stat:
                    parents[int(entry.name)], starts[int(entry.name)] = stat[0], stat[1]
        family = {self.root}
        changed = True
        while changed:
            changed = False
            for pid, ppid in parents.items():
                if ppid in family and pid not in family:
                    family.add(pid)
                    changed = True
        for pid in family - {self.root}:
            key = (pid, starts[pid])
            if key not in self.seen:
                self.seen[key] = _cmdline(pid)

    def direct_children(self) -> list[tuple[int, str]]:
        # the command line now: the one seen first may be the parent's, from before exec
        return [
            (pid, _cmdline(pid))
            for (pid, _s) in list(self.seen)
            if (_stat(pid) or (0,))[0] == self.root
        ]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def alive(self) -> list[tuple[int, str]]:
        left = []
        for (pid, started), cmd in self.seen.items():
            stat = _stat(pid)
            if stat and stat[1] == started and stat[2] != "Z":
                left.append((pid, cmd))
        return left


def start(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path, Watcher]:
    """The run, in an empty TMPDIR and an empty working directory (siblings under tmp_path)."""
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    (tmp_path / "cwd").mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir))
    env.pop("PGSLOTS_DEBUG", None)
    # the working directory is not the checkout: the package must come from the path
    source = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    process = subprocess.Popen(
        LAB,
        env=env,
        cwd=tmp_path / "cwd",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as_on_a_terminal,
    )
    return process, tmpdir, Watcher(process.pid)


def assert_nothing_left(tmpdir: Path, watcher: Watcher) -> None:
    watcher.stop()
    deadline = time.monotonic() + 10
    while watcher.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert watcher.alive() == []
    assert len(watcher.seen) > 3  # we did watch a real run
    assert sorted(p.name for p in tmpdir.iterdir()) == []
    assert sorted(p.name for p in (tmpdir.parent / "cwd").iterdir()) == []  # the working directory


def wait_for(predicate, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            _out, err = process.communicate()
            pytest.fail(f"the run ended first (exit {process.returncode}): {err.decode()[-2000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def server_count(watcher: Watcher) -> int:
    return len(
        [
            1
            for pid, cmd in watcher.direct_children()
            if any(k in cmd for k in ("gunicorn", "celery"))
        ]
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_nothing(tmp_path, signum):
    process, tmpdir, watcher = start(tmp_path)
    # Interrupt at a random moment of the run's life once PostgreSQL is up: the app's
    # startup, the load, the quiet tail or the shutdown.
    wait_for(lambda: any("postgres -D" in cmd for _pid, cmd in watcher.direct_children()), process)
    time.sleep(random.uniform(0.0, 12.0))
    process.send_signal(signum)
    _out, err = process.communicate(timeout=90)
    assert b"Traceback" not in err, err.decode()
    # The signal did land (the run did not just finish): SIGINT exits 130, SIGTERM 128 + 15.
    assert process.returncode == 128 + signum, (process.returncode, err.decode()[-2000:])
    assert_nothing_left(tmpdir, watcher)


@pytest.mark.parametrize("victim", ["postgres", "gunicorn", "celery"])
def test_crash_of_a_child_aborts_cleanly(tmp_path, victim):
    process, tmpdir, watcher = start(tmp_path)

    def leader() -> int | None:
        found = [
            pid
            for pid, cmd in watcher.direct_children()
            if victim in cmd and "pgslots lab" not in cmd
        ]
        return min(found) if found else None

    wait_for(lambda: leader() is not None and server_count(watcher) >= 2, process)
    time.sleep(1.0)
    os.kill(leader(), signal.SIGKILL)
    _out, err = process.communicate(timeout=90)
    assert process.returncode == 2, err.decode()
    lines = err.decode().strip().splitlines()
    assert lines and lines[-1].startswith("pgslots: lab run aborted:"), err.decode()
    assert "Traceback" not in err.decode()
    assert_nothing_left(tmpdir, watcher)


def test_normal_end_leaves_nothing(tmp_path):
    process, tmpdir, watcher = start(tmp_path)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    assert b"baseline" in out
    assert_nothing_left(tmpdir, watcher)
