"""Open a local HTML file in a real headless Chromium and talk to it over the DevTools protocol.

The protocol runs over a pipe (`--remote-debugging-pipe`: Chromium reads commands on fd 3 and writes replies and
events on fd 4, each message JSON ending in a NUL byte), so no port is opened and no client package is needed.
The page gets no network: it must work from the file alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def chromium_binary() -> str | None:
    """Debian's `chromium` (what CI installs); other names for a developer's machine."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-pipe",
    "--window-size=1400,1000",
)


class DevToolsError(RuntimeError):
    pass


@dataclass
class PageLog:
    """What the page said while it loaded: console messages by level, uncaught exceptions, failed requests."""

    console: list[tuple[str, str]] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    log_entries: list[tuple[str, str]] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def errors(self) -> list[str]:
        found = [f"console.{level}: {text}" for level, text in self.console if level in ("error", "assert")]
        found += [f"exception: {text}" for text in self.exceptions]
        found += [f"log.{level}: {text}" for level, text in self.log_entries if level == "error"]
        return found


class HeadlessPage:
    """One tab of a headless Chromium, navigated to `url`; `evaluate` runs JavaScript in it."""

    def __init__(self, binary: str, url: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.log = PageLog()
        self._next_id = 0
        self._buffer = b""
        # Chromium's helper processes may still write to the profile as it is removed: never a test failure.
        self._profile = tempfile.TemporaryDirectory(prefix="finrecon-chromium-", ignore_cleanup_errors=True)
        to_browser_read, self._to_browser = _high_pipe()
        self._from_browser, from_browser_write = _high_pipe()
        # Chromium expects the pipe on fds 3 (its input) and 4 (its output).
        self._process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=lambda: _move_fds(to_browser_read, from_browser_write),
            start_new_session=True,  # its own process group: close() stops the helpers too
        )
        os.close(to_browser_read)
        os.close(from_browser_write)
        try:
            self._session = self._open_tab(url)
        except Exception:
            self.close()
            raise

    def _open_tab(self, url: str) -> str:
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self._call(f"{domain}.enable", {}, session)
        self._call("Page.navigate", {"url": url}, session)
        self._session = session
        self._wait_loaded(url)
        return session

    def _wait_loaded(self, url: str) -> None:
        """Poll until the document at `url` has loaded (a load event may still come from the blank page)."""
        deadline = time.monotonic() + self.timeout
        check = f"location.href === {json.dumps(url)} && document.readyState === 'complete'"
        while not self.evaluate(check):
            if time.monotonic() > deadline:
                raise DevToolsError(f"{url} did not load within {self.timeout} s")
            time.sleep(0.05)

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The value of `expression` in the page (JSON-serialisable values only)."""
        result = self._call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
            self._session,
        )
        if "exceptionDetails" in result:
            raise DevToolsError(json.dumps(result["exceptionDetails"])[:2000])
        return result["result"].get("value")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._to_browser)
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        with contextlib.suppress(OSError):
            os.killpg(self._process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.close(self._from_browser)
        self._profile.cleanup()

    def __enter__(self) -> HeadlessPage:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # protocol plumbing

    def _call(self, method: str, params: dict[str, Any], session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        call_id = self._next_id
        reply = self._wait_for(lambda m: m.get("id") == call_id)
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return dict(reply.get("result", {}))

    def _wait_for(self, wanted: Any) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            message = self._read_message(deadline)
            self._record(message)
            if wanted(message):
                return message
        raise DevToolsError(f"no answer from Chromium within {self.timeout} s")

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise DevToolsError("Chromium stopped answering")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise DevToolsError(f"Chromium closed the pipe (exit code {self._process.poll()})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(raw))

    def _record(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self.log.console.append((params.get("type", ""), text))
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.log.exceptions.append(
                str(details.get("exception", {}).get("description") or details.get("text"))
            )
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            self.log.log_entries.append(
                (entry.get("level", ""), f"{entry.get('text', '')} {entry.get('url', '')}")
            )
        elif method == "Page.javascriptDialogOpening":
            self.log.dialogs.append(str(params.get("message")))


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are numbered 10 and up, so moving them onto fds 3 and 4 in the child clobbers neither."""
    read_end, write_end = os.pipe()
    high = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (read_end, write_end))
    os.close(read_end)
    os.close(write_end)
    return high[0], high[1]


def _move_fds(read_end: int, write_end: int) -> None:
    """In the child: put the pipe ends on fds 3 and 4 where Chromium looks for them."""
    os.dup2(read_end, 3)
    os.dup2(write_end, 4)


def open_file(path: Path, timeout: float = 60.0) -> HeadlessPage:
    binary = chromium_binary()
    if binary is None:
        raise DevToolsError("no chromium on PATH")
    return HeadlessPage(binary, path.resolve().as_uri(), timeout)
