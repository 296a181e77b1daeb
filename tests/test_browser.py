"""Render report.html in headless Chromium over the DevTools protocol (stdlib only, no network).

The test loads the report from a file:// URL, collects console errors, uncaught exceptions,
failed loads and every network request, then checks that each <img> decoded and saves a
full-page screenshot beside the report.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]


class WebSocket:
    """The smallest websocket client the DevTools protocol needs (RFC 6455, text frames)."""

    def __init__(self, url: str, timeout: float) -> None:
        rest = url.removeprefix("ws://")
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {head!r}")

    def send(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x81, 0x80 | n)
        elif n < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return bytes(buf)

    def recv(self) -> str:
        message = bytearray()
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._exact(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._exact(8))
            payload = self._exact(n)  # the server never masks
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def close(self) -> None:
        self.sock.close()


class DevTools:
    """Send commands and keep every event that arrives while waiting for their replies."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float) -> None:
        if any(e.get("method") == method for e in self.events):
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return
        raise TimeoutError(f"no {method} within {timeout} s")


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    # With --remote-debugging-port=0 chromium picks a free port and writes it here.
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if marker.exists():
            lines = marker.read_text().splitlines()
            if lines and lines[0].isdigit():
                return int(lines[0])
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with status {proc.returncode}")
        time.sleep(0.1)
    raise TimeoutError("chromium did not open its DevTools port")


def render(html: Path, screenshot: Path, timeout: float = 60.0) -> dict[str, Any]:
    """Open ``html`` in headless Chromium; return what loaded, what failed and what was logged."""
    profile = html.parent / ".chromium-profile"
    shutil.rmtree(profile, ignore_errors=True)
    profile.mkdir()
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing resolves: no network even if asked
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "--window-size=1400,1000",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = _devtools_port(profile, proc, timeout)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        ws = WebSocket(page["webSocketDebuggerUrl"], timeout)
        try:
            dt = DevTools(ws)
            for domain in ("Page", "Runtime", "Log", "Network"):
                dt.call(f"{domain}.enable")
            dt.call("Page.navigate", url=html.resolve().as_uri())
            dt.wait_for("Page.loadEventFired", timeout)
            images = dt.call(
                "Runtime.evaluate",
                expression=(
                    "JSON.stringify(Array.from(document.images).map(i => "
                    "({src: i.src.slice(0, 40), complete: i.complete, width: i.naturalWidth})))"
                ),
                returnByValue=True,
            )["result"]["value"]
            title = dt.call("Runtime.evaluate", expression="document.title", returnByValue=True)
            metrics = dt.call("Page.getLayoutMetrics")["cssContentSize"]
            shot = dt.call(
                "Page.captureScreenshot",
                format="png",
                captureBeyondViewport=True,
                clip={
                    "x": 0,
                    "y": 0,
                    "width": metrics["width"],
                    "height": metrics["height"],
                    "scale": 1,
                },
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            events = dt.events
        finally:
            ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)

    def params(method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in events if e.get("method") == method]

    return {
        "title": title["result"]["value"],
        "images": json.loads(images),
        "console_errors": [
            p for p in params("Runtime.consoleAPICalled") if p["type"] in ("error", "assert")
        ],
        "exceptions": params("Runtime.exceptionThrown"),
        "log_errors": [
            p["entry"] for p in params("Log.entryAdded") if p["entry"]["level"] == "error"
        ],
        "failed_loads": params("Network.loadingFailed"),
        "requests": [p["request"]["url"] for p in params("Network.requestWillBeSent")],
    }


def check_rendered(html: Path, screenshot: Path) -> dict[str, Any]:
    """Render and assert: every image decoded, nothing logged as an error, nothing fetched from a network."""
    seen = render(html, screenshot)
    assert seen["images"], "the report has no images"
    broken = [im for im in seen["images"] if not (im["complete"] and im["width"] > 0)]
    assert not broken, f"images that did not load: {broken}"
    assert not seen["console_errors"], seen["console_errors"]
    assert not seen["exceptions"], seen["exceptions"]
    assert not seen["log_errors"], seen["log_errors"]
    assert not seen["failed_loads"], seen["failed_loads"]
    remote = [u for u in seen["requests"] if not u.startswith(("file:", "data:"))]
    assert not remote, f"the report reached for the network: {remote}"
    assert screenshot.stat().st_size > 0
    return seen


def test_the_demo_report_renders_with_every_image_and_no_error(
    demo_run: tuple[Path, int, str, str], tmp_path: Path
) -> None:
    report = demo_run[0] / "report.html"
    shot = tmp_path / "report.png"
    seen = check_rendered(report, shot)
    assert seen["title"] == f"{demo_run[0].name}: glassbox report"
    assert len(seen["images"]) == report.read_text().count("<img ")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_paper_size_report_renders_with_every_image_and_no_error(
    paper_run: Path, tmp_path: Path
) -> None:
    report = paper_run / "report.html"
    seen = check_rendered(report, tmp_path / "paper.png")
    assert seen["title"] == f"{paper_run.name}: glassbox report"
    assert len(seen["images"]) == report.read_text().count("<img ")
    # The figures are drawn at most as wide as the page shows them: none is scaled down past
    # half size, which would make its labels unreadable.
    assert all(im["width"] <= 2 * 1200 for im in seen["images"])


def test_the_checker_catches_a_broken_image_and_a_console_error(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text(
        "<!doctype html><html><head><title>bad</title></head><body>"
        '<img src="data:image/png;base64,AAAA"><script>console.error("boom")</script>'
        "</body></html>"
    )
    seen = render(page, tmp_path / "bad.png")
    assert seen["title"] == "bad"
    assert seen["images"][0]["width"] == 0
    assert any("boom" in json.dumps(e) for e in seen["console_errors"])
