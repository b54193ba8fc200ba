"""Every process the lab starts, and the guarantee that none outlives the run.

Each child gets its own session (`start_new_session=True`), so a whole server (a gunicorn
master and its workers, a Celery worker and its prefork children) is one process group
that we stop with one `killpg`, and so that a Ctrl-C at the terminal reaches only us: we
then stop the children in order (load, web, worker, pgbouncer, postgres) instead of
letting them race.

Exit paths covered: a normal end and any exception (`finally` in the run), Ctrl-C
(KeyboardInterrupt), SIGTERM and SIGHUP (turned into `Terminated`, which unwinds the same
way), and a child that dies (the run watches its children and aborts with the child's
name). `atexit` is the last resort. Every child also carries `PGSLOTS_LAB_RUN=<id>` in its
environment, so a test can prove that nothing of a run is left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

RUN_MARKER = "PGSLOTS_LAB_RUN"


class ChildDied(RuntimeError):
    """A process the run depends on exited on its own."""


class Child:
    """One started process group: a name for messages, the Popen, its log file, and the
    signal that asks its leader to stop."""

    def __init__(
        self,
        name: str,
        process: subprocess.Popen[bytes],
        log: Path,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.process = process
        self.log = log
        self.stop_signal = stop_signal

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = 1500) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def send(self, signum: int) -> None:
        """SIGKILL goes to the whole group; other signals to the leader only (gunicorn,
        uvicorn and Celery then stop their own workers in order)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if signum == signal.SIGKILL:
                os.killpg(self.process.pid, signum)
            else:
                os.kill(self.process.pid, signum)

    def gone(self) -> bool:
        self.process.poll()  # reap the leader so the group can empty
        return not _group_alive(self.process.pid)

    def stop(self, grace: float = 10.0) -> None:
        """Ask the leader to stop, wait `grace` seconds for the whole group to go, then
        SIGKILL the group: whatever the leader left behind goes too."""
        stop_together([self], grace)


def stop_together(children: Sequence[Child], grace: float = 10.0) -> None:
    """Stop several groups at once (their graceful shutdowns overlap instead of adding up)."""
    for stopping, wait in ((True, grace), (False, 5.0)):
        alive = [c for c in children if not c.gone()]
        if not alive:
            return
        for child in alive:
            child.send(child.stop_signal if stopping else signal.SIGKILL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(not c.gone() for c in alive):
            time.sleep(0.05)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # The leader may be a zombie we have not reaped while the rest is gone.
    return any(_pgid_of(pid) == pgid for pid in _pids())


def _pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def _pgid_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if fields and fields[0] == "Z":
        return None  # zombies hold no resources
    return int(fields[2]) if len(fields) > 2 else None


class Children:
    """The registry of a run's children. `stop_all()` is idempotent and also registered
    with atexit."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        # Children's own temporary files (multiprocessing's pymp-* from Celery, say) go under
        # the run's work directory, which the run deletes whatever happens, even after a
        # child had to be killed before it could clean up.
        self.tmpdir: Path | None = None
        self._children: list[Child] = []
        self._lock = threading.Lock()
        atexit.register(self.stop_all)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env[RUN_MARKER] = self.run_id
        if self.tmpdir is not None:
            self.tmpdir.mkdir(parents=True, exist_ok=True)
            env["TMPDIR"] = str(self.tmpdir)
        env.update(extra or {})
        return env

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Child:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            process = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(env),
                cwd=str(cwd) if cwd else None,
                start_new_session=True,
            )
        child = Child(name, process, log, stop_signal)
        with self._lock:
            self._children.append(child)
        return child

    def check_alive(self, children: Sequence[Child]) -> None:
        for child in children:
            if not child.alive():
                raise ChildDied(
                    f"{child.name} exited with code {child.process.returncode}; "
                    f"last lines of {child.log}:\n{child.log_tail(800)}"
                )

    def stop(self, children: Sequence[Child], grace: float = 10.0) -> None:
        stop_together(children, grace)
        with self._lock:
            self._children = [c for c in self._children if c not in children]

    def stop_all(self) -> None:
        with self._lock:
            children, self._children = list(self._children), []
        stop_together(children, grace=5.0)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP while cleaning up, so a second Ctrl-C cannot leave half
    of the children running; they are delivered when the block ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
