"""A tiny Chrome DevTools Protocol client over `--remote-debugging-pipe` (no extra dependencies).

Chromium reads NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4. That is
all the browser test needs: open pages, type, click, download, take screenshots.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    explicit = os.environ.get("VIGIL_CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class CDPError(RuntimeError):
    pass


class Browser:
    def __init__(self, binary: str, profile: Path, *, width: int = 1280, height: int = 900):
        profile.mkdir(parents=True, exist_ok=True)
        self.log_path = profile / "chromium.log"
        self._log = self.log_path.open("wb")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds() -> None:  # runs in the child: its fd 3 reads our commands, fd 4 writes replies
            # Copy both out of the way first (either may already be 3 or 4); dup2 targets are inherited.
            high_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
            high_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        args = [binary, "--headless", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--hide-scrollbars", "--mute-audio", "--font-render-hinting=none", f"--window-size={width},{height}"]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root (CI runs as root)
        # close_fds=False: it would close 3 and 4 after wire_fds; our other fds are non-inheritable.
        self.process = subprocess.Popen(args + ["about:blank"], preexec_fn=wire_fds, close_fds=False,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=self._log)  # a file: a full pipe would stall Chromium
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer, self._next_id, self.events = b"", 0, []

    # ---- protocol -----------------------------------------------------------------------------
    def _read(self, deadline: float) -> dict | None:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    log = self.log_path.read_text(errors="replace")[-2000:]
                    raise CDPError(f"Chromium exited ({self.process.poll()}): {log}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float = 30) -> dict:
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            command["sessionId"] = session
        os.write(self._to_child, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while (message := self._read(deadline)) is not None:
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise CDPError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)
        raise CDPError(f"{method}: no answer within {timeout}s")

    def wait_for(self, method: str, *, session: str | None = None, timeout: float = 30, where=lambda p: True) -> dict:
        """The first event `method` (recorded earlier or arriving now) matching `where`; consumed."""
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and (session is None or event.get("sessionId") == session) \
                        and where(event.get("params", {})):
                    return self.events.pop(index)["params"]
            message = self._read(deadline)
            if message is None:
                raise CDPError(f"no {method} event within {timeout}s")
            self.events.append(message)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (CDPError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        self._log.close()

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call("Page.enable")
        page.call("Runtime.enable")
        return page


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def call(self, method: str, params: dict | None = None, timeout: float = 30) -> dict:
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    def _loaded(self, timeout: float = 30) -> None:
        self.browser.wait_for("Page.loadEventFired", session=self.session, timeout=timeout)

    def goto(self, url: str) -> None:
        self.browser.events = [e for e in self.browser.events if e.get("method") != "Page.loadEventFired"]
        answer = self.call("Page.navigate", {"url": url})
        if answer.get("errorText"):
            raise CDPError(f"navigating to {url}: {answer['errorText']}")
        self._loaded()

    def evaluate(self, expression: str):
        answer = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in answer:
            raise CDPError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    @property
    def url(self) -> str:
        return self.evaluate("location.href")

    def type_into(self, selector: str, text: str) -> None:
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", {"text": text})

    def click(self, selector: str, *, navigates: bool = True) -> None:
        """A real mouse click in the middle of the element (as a person would)."""
        box = self.evaluate(f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
                            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        if navigates:
            self.browser.events = [e for e in self.browser.events if e.get("method") != "Page.loadEventFired"]
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left",
                                                   "clickCount": 1})
        if navigates:
            self._loaded()

    def screenshot(self, path: Path, *, width: int = 1280, max_height: int = 4000) -> Path:
        """The whole page (up to `max_height` CSS pixels) as PNG."""
        height = min(max_height, int(self.evaluate("document.documentElement.scrollHeight")))
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": False})
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": False})["data"]
        path.write_bytes(base64.b64decode(data))
        return path
