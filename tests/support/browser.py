"""A real headless Chromium, driven over the DevTools protocol: open a page, evaluate, collect console errors.

The protocol is spoken over aiohttp's websocket client (already a judgeforge dependency), so no
browser-automation package and no downloaded browser: the system `chromium` (Debian's package,
installed by `scripts/install.sh --dev`) is used.

    with HeadlessChromium() as browser:
        page = browser.open("file:///.../report.html", "document.title")
        page.value, page.console_errors, page.requests
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from typing_extensions import Self

EXECUTABLES = ("chromium", "chromium-browser", "google-chrome")
DEVTOOLS_URL = re.compile(r"DevTools listening on (ws://[^\s]+)")
START_TIMEOUT_S = 60
PAGE_TIMEOUT_S = 60


def chromium_executable() -> str | None:
    """Return the path of an installed Chromium, or None."""
    return next((path for path in map(shutil.which, EXECUTABLES) if path), None)


@dataclass
class PageVisit:
    """What one page load showed: the evaluated value, console errors and every request the page made."""

    value: Any = None
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


class HeadlessChromium:
    """A headless Chromium process with a DevTools endpoint on 127.0.0.1, stopped on exit."""

    def __init__(self, executable: str | None = None) -> None:
        self.executable = executable or chromium_executable()
        if self.executable is None:
            raise FileNotFoundError(f"no Chromium found (looked for {', '.join(EXECUTABLES)})")
        self._profile = tempfile.TemporaryDirectory(prefix="judgeforge-chromium-")
        self._process: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [
                self.executable,
                "--headless",
                "--no-sandbox",  # tests may run as root (CI containers)
                "--disable-gpu",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile.name}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = self._devtools_port()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process.stderr.close()  # type: ignore[union-attr]
        self._profile.cleanup()

    def _devtools_port(self) -> int:
        assert self._process is not None and self._process.stderr is not None
        lines = []
        for line in self._process.stderr:
            lines.append(line)
            found = DEVTOOLS_URL.search(line)
            if found:
                return int(found.group(1).split(":")[2].split("/")[0])
        raise RuntimeError("Chromium exited without a DevTools endpoint:\n" + "".join(lines[-20:]))

    def open(self, url: str, expression: str) -> PageVisit:
        """Load `url` in a new tab, wait for its load event, evaluate `expression` (awaiting a promise) and return what happened."""
        return asyncio.run(asyncio.wait_for(self._visit(url, expression), PAGE_TIMEOUT_S))

    async def _visit(self, url: str, expression: str) -> PageVisit:
        visit = PageVisit()
        async with aiohttp.ClientSession() as http:
            async with http.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as response:
                target = await response.json(content_type=None)
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                page = _DevTools(socket, visit)
                for domain in ("Runtime", "Log", "Network", "Page"):
                    await page.call(f"{domain}.enable")
                await page.call("Page.navigate", url=url)
                await page.until_event("Page.loadEventFired")
                result = await page.call(
                    "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
                )
                if "exceptionDetails" in result:
                    raise RuntimeError(
                        f"evaluating the expression failed: {result['exceptionDetails']}"
                    )
                visit.value = result["result"].get("value")
        return visit


class _DevTools:
    """One DevTools session over a websocket: numbered calls, events recorded into a PageVisit."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse, visit: PageVisit) -> None:
        self._socket = socket
        self._visit = visit
        self._ids = itertools.count(1)
        self._seen: set[str] = set()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        await self._socket.send_str(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = await self._receive()
            if message.get("id") == number:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def until_event(self, method: str) -> None:
        while method not in self._seen:
            await self._receive()

    async def _receive(self) -> dict[str, Any]:
        message = json.loads((await self._socket.receive()).data)
        method = message.get("method")
        if method:
            self._seen.add(method)
            self._record(method, message.get("params", {}))
        return message

    def _record(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self._visit.console_errors.append(
                " ".join(
                    str(arg.get("value", arg.get("description", "")))
                    for arg in params.get("args", [])
                )
            )
        elif method == "Runtime.exceptionThrown":
            self._visit.console_errors.append(params["exceptionDetails"].get("text", "exception"))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self._visit.console_errors.append(params["entry"].get("text", ""))
        elif method == "Network.requestWillBeSent":
            self._visit.requests.append(params["request"]["url"])
