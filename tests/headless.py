"""Open a page in a real headless Chromium and ask it what it rendered.

Driven over the DevTools protocol through `--remote-debugging-pipe` (file descriptors 3
and 4, messages separated by NUL bytes), so the tests need nothing but the Debian
`chromium` binary and the standard library: no websocket client, no Playwright download.

Every network request the page makes is recorded (`Network.requestWillBeSent`), and the
browser is started with a proxy on a closed loopback port, so a request that tries to leave
the machine both fails and shows up in `requests`.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevToolsError(RuntimeError):
    pass


@dataclasses.dataclass
class PageLoad:
    requests: list[str]  # every URL the page asked for, the document included
    failed: list[str]  # requests that failed (blocked, refused)
    console: list[str]  # console messages and uncaught exceptions


class Chromium:
    """One headless browser, one page. Use as a context manager; it always cleans up."""

    def __init__(
        self, executable: str, *, width: int = 1100, height: int = 900, timeout: float = 30.0
    ) -> None:
        self.executable = executable
        self.width, self.height, self.timeout = width, height, timeout
        self._profile = tempfile.TemporaryDirectory(prefix="pgslots-chromium-")
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self.session: str | None = None

    def __enter__(self) -> Chromium:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def wire_fds() -> None:  # in the child: the protocol's fds 3 (commands) and 4 (replies)
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [
                self.executable,
                *FLAGS,
                "--remote-debugging-pipe",
                f"--user-data-dir={self._profile.name}",
                f"--proxy-server=http://127.0.0.1:{closed_port()}",
                "--proxy-bypass-list=<-loopback>",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_fds,
            pass_fds=(3, 4),  # kept open across exec: wire_fds put the pipes there
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            self.call("Network.enable")
            self.call("Page.enable")
            self.call("Runtime.enable")
            self.call("Log.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=self.height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.process.poll() is None:
                try:
                    self.session = None
                    self.call("Browser.close", timeout=5)
                except (DevToolsError, OSError):
                    pass
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=10)
        finally:
            for fd in (self._to_browser, self._from_browser):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._profile.cleanup()

    # -- the protocol --------------------------------------------------------------------------

    def _read_message(self, deadline: float) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DevToolsError("timed out waiting for the browser")
            ready, _, _ = select.select([self._from_browser], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise DevToolsError(
                    f"the browser closed the pipe (exit code {self.process.poll()})"
                )
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise DevToolsError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_for(self, event: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        while True:
            for e in self._events[seen:]:
                if e["method"] == event:
                    return e
            seen = len(self._events)
            message = self._read_message(deadline)
            if "method" in message:
                self._events.append(message)

    # -- what the tests use --------------------------------------------------------------------

    def open(self, path: Path, *, settle: float = 0.3) -> PageLoad:
        """Load a local file, wait for its load event and a short quiet period, and report
        every request it made."""
        self._events.clear()
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        end = time.monotonic() + settle
        try:
            while time.monotonic() < end:
                self._events.append(self._read_message(end))
        except DevToolsError:
            pass
        requests = [
            e["params"]["request"]["url"]
            for e in self._events
            if e["method"] == "Network.requestWillBeSent"
        ]
        failed = [
            f"{e['params'].get('requestId')}: {e['params'].get('errorText')}"
            for e in self._events
            if e["method"] == "Network.loadingFailed"
        ]
        console = [
            json.dumps(e["params"])
            for e in self._events
            if e["method"]
            in ("Runtime.exceptionThrown", "Log.entryAdded", "Runtime.consoleAPICalled")
        ]
        return PageLoad(requests, failed, console)

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise DevToolsError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def emulate(self, *, color_scheme: str | None = None, media: str = "") -> None:
        features = [{"name": "prefers-color-scheme", "value": color_scheme}] if color_scheme else []
        self.call("Emulation.setEmulatedMedia", media=media, features=features)

    def resize(self, width: int, height: int) -> None:
        """Emulate another viewport (CSS pixels); `screenshot` then captures that width."""
        self.width, self.height = width, height
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def viewport_shot(self, path: Path) -> Path:
        """Only what the first screen shows (the top `height` pixels)."""
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            clip={"x": 0, "y": 0, "width": self.width, "height": self.height, "scale": 1},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def screenshot(self, path: Path) -> Path:
        """The whole page, not just the viewport."""
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)"))
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1},
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def pdf(self, path: Path) -> Path:
        printed = self.call("Page.printToPDF", printBackground=False)
        path.write_bytes(base64.b64decode(printed["data"]))
        return path
