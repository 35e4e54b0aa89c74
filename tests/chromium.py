"""Load a page in headless Chromium over the DevTools protocol: console errors, network requests, the state of
every image, and a screenshot. Used to check that the HTML report renders in a real browser."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--mute-audio", "--remote-debugging-address=127.0.0.1",
         "--remote-debugging-port=0"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageLoad:
    url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    screenshot: bytes = b""
    title: str = ""
    text: str = ""


def load(path: str, width: int = 1100, timeout: float = 120.0) -> PageLoad:
    """Open ``path`` from disk in a fresh headless Chromium profile and report what the browser saw."""
    import websocket

    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no Chromium on PATH (Debian: apt-get install chromium)")
    # A browser that dies before it opens DevTools has not seen the page yet: on a busy machine Chromium has
    # aborted at start-up (SIGABRT) now and then, so it is started again, up to three times, before that is an error.
    for attempt in range(3):
        profile = tempfile.mkdtemp(prefix="gmat-sweep-chromium-")
        with tempfile.TemporaryFile() as log:
            process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900",
                                        "about:blank"], stdout=subprocess.DEVNULL, stderr=log,
                                       start_new_session=True)  # its own process group: its helpers end with it
            try:
                port = _port(profile, process, timeout)
                break
            except BaseException as exc:
                _stop(process)
                shutil.rmtree(profile, ignore_errors=True)
                if not isinstance(exc, _NoStart):
                    raise
                log.seek(0)
                said = log.read().decode(errors="replace").strip().splitlines()[-5:]
                if attempt == 2:
                    raise RuntimeError(f"{exc}; its last words: {' | '.join(said)}") from None
    try:
        target = _page_target(port, timeout)
        socket = websocket.create_connection(target, timeout=timeout, suppress_origin=True)
        try:
            return _drive(socket, "file://" + os.path.abspath(path), width, timeout)
        finally:
            socket.close()
    finally:
        _stop(process)
        shutil.rmtree(profile, ignore_errors=True)


class _NoStart(RuntimeError):
    """Chromium ended before it opened DevTools."""


def _stop(process: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue


def _port(profile: str, process: subprocess.Popen, timeout: float) -> int:
    marker = os.path.join(profile, "DevToolsActivePort")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _NoStart(f"Chromium exited with status {process.returncode} before it opened DevTools")
        if os.path.exists(marker):
            lines = open(marker).read().split()
            if lines:
                return int(lines[0])
        time.sleep(0.05)
    raise TimeoutError("Chromium did not open its DevTools port")


def _page_target(port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                pages = [t for t in json.load(response) if t.get("type") == "page"]
        except OSError:  # the port is announced a moment before it answers
            pages = []
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.05)
    raise TimeoutError("Chromium opened no page")


class _Session:
    def __init__(self, socket: Any, load: PageLoad) -> None:
        self.socket, self.load, self.next_id, self.events = socket, load, 0, []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.event(message)

    def wait_for(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            self.event(message)
            if message.get("method") == method:
                return
        raise TimeoutError(f"no {method} within {timeout} s")

    def event(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.exceptionThrown":
            self.load.errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.load.errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.load.errors.append(params["entry"].get("text", "error"))
        elif method == "Network.requestWillBeSent":
            self.load.requests.append(params["request"]["url"][:200])


def _drive(socket: Any, url: str, width: int, timeout: float) -> PageLoad:
    load = PageLoad(url)
    session = _Session(socket, load)
    for domain in ("Page", "Runtime", "Log", "Network"):
        session.call(f"{domain}.enable")
    session.call("Page.navigate", url=url)
    session.wait_for("Page.loadEventFired", timeout)
    # Images may still be decoding after the load event: wait for each to settle either way.
    state = session.call("Runtime.evaluate", awaitPromise=True, returnByValue=True, expression="""
        Promise.all(Array.from(document.images).map(i => i.decode().then(() => true, () => false)))
          .then(decoded => ({title: document.title, text: document.body.innerText,
                             height: document.documentElement.scrollHeight,
                             images: Array.from(document.images).map((i, n) => ({alt: i.alt, complete: i.complete,
                                 width: i.naturalWidth, height: i.naturalHeight, decoded: decoded[n]}))}))
    """)["result"]["value"]
    load.images, load.title, load.text = state["images"], state["title"], state["text"]
    height = min(int(state["height"]), 16000)
    session.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
    shot = session.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    load.screenshot = base64.b64decode(shot["data"])
    return load
