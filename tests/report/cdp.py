"""Headless Chromium driven over the DevTools protocol on a pipe, with the standard library only.

``--remote-debugging-pipe`` makes Chromium read NUL-terminated JSON commands on fd 3 and answer on
fd 4, so a test needs neither websockets nor puppeteer. One browser serves many pages (starting
Chromium costs seconds), every page gets a 1400x900 viewport before it loads, and the network is
off: a proxy on a dead port fails any request, and the requests a page attempts are recorded so a
test can assert there were none but the page itself.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

# Debian's chromium here and in .ci/run; GitHub's Ubuntu runners ship Google Chrome instead (its apt
# "chromium" is a snap stub). FLOWCHECK_CHROMIUM names another build.
_CANDIDATES = (os.environ.get("FLOWCHECK_CHROMIUM", ""), "/usr/bin/chromium", "/usr/bin/google-chrome")
CHROMIUM = next((Path(c) for c in _CANDIDATES if c and Path(c).exists()), Path("/usr/bin/chromium"))
WINDOW = (1400, 900)
START_TIMEOUT_S = 120.0  # first start on a cold CI runner builds caches; a normal start takes 1-3 s
COMMAND_TIMEOUT_S = 60.0
SKIP_REASON = ("no Chromium: neither /usr/bin/chromium nor /usr/bin/google-chrome (Debian: apt-get install -y "
               "chromium; or FLOWCHECK_CHROMIUM=PATH)")

# Flags shared with test_html_chromium's screenshot command: no network, no background traffic.
OFFLINE_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
)


class BrowserError(RuntimeError):
    pass


class Browser:
    """One Chromium process; ``open`` loads a page in a fresh tab and makes it the target of commands."""

    def __init__(self) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="flowcheck-chromium-")
        command_read, self._command_write = os.pipe()
        self._reply_read, reply_write = os.pipe()

        def as_fds_3_and_4() -> None:  # runs in the child: Chromium expects the pipe on fds 3 and 4
            read_copy, write_copy = os.dup(command_read), os.dup(reply_write)
            os.dup2(read_copy, 3)
            os.dup2(write_copy, 4)

        args = [str(CHROMIUM), *OFFLINE_FLAGS, f"--user-data-dir={self._profile.name}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars", "--remote-debugging-pipe",
                "about:blank"]
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- closed in close(), read on errors
        self.process = subprocess.Popen(args, pass_fds=(3, 4, command_read, reply_write),
                                        preexec_fn=as_fds_3_and_4,
                                        stdout=subprocess.DEVNULL, stderr=self._stderr)
        os.close(command_read)
        os.close(reply_write)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None
        self._target = ""
        self.events: list[dict[str, Any]] = []
        self.send("Browser.getVersion", session=False, timeout=START_TIMEOUT_S)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout: float = COMMAND_TIMEOUT_S) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline)
            if "method" in reply:
                self.events.append(reply)
            elif reply.get("id") == self._id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
        raise BrowserError(f"{method}: no answer in {timeout} s{self._stderr_tail()}")

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._reply_read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise BrowserError(f"chromium did not answer in time{self._stderr_tail()}")
            chunk = os.read(self._reply_read, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium closed the pipe{self._stderr_tail()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        reply: dict[str, Any] = json.loads(raw)
        return reply

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        tail = self._stderr.read()[-2000:].decode(errors="replace").strip()
        return f"; chromium said:\n{tail}" if tail else ""

    def open(self, url: str, *, javascript: bool = True, window: tuple[int, int] = WINDOW) -> None:
        """Load ``url`` in a new tab with a ``window``-sized viewport (scripts off when ``javascript`` is False)."""
        if self.session:
            self.send("Target.closeTarget", {"targetId": self._target}, session=False)
        self._target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": self._target, "flatten": True},
                                 session=False)["sessionId"]
        self.events.clear()
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": window[0], "height": window[1], "deviceScaleFactor": 1, "mobile": False})
        self.send("Emulation.setScriptExecutionDisabled", {"value": not javascript})
        self.send("Page.enable")
        self.send("Network.enable")  # records every request the page attempts
        self.send("Page.navigate", {"url": url})
        self.wait_for("document.readyState === 'complete'")

    def requested_urls(self) -> list[str]:
        sent = (e for e in self.events if e["method"] == "Network.requestWillBeSent")
        return sorted({e["params"]["request"]["url"] for e in sent})

    def eval(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise BrowserError(f"{expression[:80]}...: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait_for(self, expression: str, timeout: float = COMMAND_TIMEOUT_S) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.eval(expression)
            if value:
                return value
            time.sleep(0.05)
        raise BrowserError(f"timed out waiting for {expression}")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "clickCount": 1,
                                                   "button": "none" if kind == "mouseMoved" else "left"})

    def screenshot(self, path: Path) -> Path:
        # optimizeForSpeed: Chromium writes every row with the "up" filter, which pngread decodes quickly
        data = self.send("Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True})["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        with contextlib.suppress(BrowserError, OSError):
            self.send("Browser.close", session=False, timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._command_write)
        os.close(self._reply_read)
        self._stderr.close()
        self._profile.cleanup()
