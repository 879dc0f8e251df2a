"""The web app's production server against the e2e platform's gateway, and headless Chromium.

The server is `frontend/.next/standalone/server.js` (built here when missing or older than the
sources); Chromium is Debian's `/usr/bin/chromium` driven by Playwright (no browser download). A
failing test leaves a screenshot of every page it opened in ``test-artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.local.ports import free_port
from infra.spec import REPO_ROOT, load_spec

from ..conftest import Platform

FRONTEND = REPO_ROOT / "frontend"
NODE_BIN = REPO_ROOT / ".tools" / "node" / "bin"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
SOURCES = ("app", "components", "lib", "proxy.ts", "next.config.ts", "package-lock.json")


def _newest_source() -> float:
    newest = 0.0
    for name in SOURCES:
        path = FRONTEND / name
        files = path.rglob("*") if path.is_dir() else [path]
        newest = max([newest, *(f.stat().st_mtime for f in files if f.is_file())])
    return newest


def build_if_stale() -> Path:
    """The standalone server, rebuilt when a source is newer than the last build."""
    server = FRONTEND / ".next" / "standalone" / "server.js"
    stamp = FRONTEND / ".next" / "BUILD_ID"
    if not server.exists() or not stamp.exists() or stamp.stat().st_mtime < _newest_source():
        env = {
            **os.environ,
            "PATH": f"{NODE_BIN}{os.pathsep}{os.environ['PATH']}",
            "NEXT_TELEMETRY_DISABLED": "1",
        }
        done = subprocess.run(
            ["npm", "run", "build"],
            cwd=FRONTEND,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, f"npm run build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return server


@dataclass
class WebApp:
    """The running app: its origin (what the browser opens), its log, and how to trust its TLS."""

    origin: str
    log: Path
    platform: Platform
    verify: str | bool = True

    def url(self, path: str) -> str:
        return f"{self.origin}{path}"


@pytest.fixture(scope="session")
def e2e_platform(request: pytest.FixtureRequest) -> Platform:
    """The session's platform; ``WEB_E2E_STATE_DIR`` reuses one already up (while iterating)."""
    state_dir = os.environ.get("WEB_E2E_STATE_DIR")
    if state_dir:
        state = json.loads((Path(state_dir) / "state.json").read_text())
        return Platform(Path(state_dir), state, load_spec("dev"))
    return request.getfixturevalue("platform")


def routed_web_app(platform: Platform) -> dict[str, Any] | None:
    """The web app `platform dev up` runs behind its gateway, when it runs one."""
    return next((c for c in platform.state["components"] if c.get("kind") == "web"), None)


@pytest.fixture(scope="session")
def web(e2e_platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:
    """Through the platform's HTTPS gateway when the platform runs the app; else the production
    server started here, opened directly (its API calls still go through the gateway)."""
    routed = routed_web_app(e2e_platform)
    if routed is not None:
        origin = f"https://localhost:{e2e_platform.ports['gateway_https']}"
        yield WebApp(origin, e2e_platform.log(routed["name"]), e2e_platform, verify=e2e_platform.ca)
        return
    server = build_if_stale()
    port = free_port()
    log = tmp_path_factory.mktemp("web") / "web.log"
    env = {
        **os.environ,
        "PORT": str(port),
        "HOSTNAME": "127.0.0.1",
        "API_BASE_URL": f"https://localhost:{e2e_platform.ports['gateway_https']}",
        "NODE_EXTRA_CA_CERTS": e2e_platform.ca,
        "NEXT_TELEMETRY_DISABLED": "1",
        "NODE_ENV": "production",
    }
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(NODE_BIN / "node"), str(server)], cwd=server.parent, env=env, stdout=out, stderr=out
        )
    # "localhost": browsers treat it as a secure context, so the Secure auth cookies work over http.
    app = WebApp(f"http://localhost:{port}", log, e2e_platform)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"web server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"web server not healthy:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield app
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for one test module. Not longer: Playwright's sync API keeps an event loop running
    while it is started, and the async tests that run later in the session need none to be."""
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield chromium
        chromium.close()


@dataclass
class Pages:
    """Opens browser contexts for a test; remembers console errors and every page (screenshots)."""

    browser: Any
    https: bool = False
    opened: list[Any] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    contexts: list[Any] = field(default_factory=list)

    def new(self, *, javascript: bool = True, phone: bool = True) -> Any:
        size = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
        # The platform's locally generated CA is not in Chromium's store; its certificate is the
        # gateway's own (the httpx checks verify it against that CA).
        context = self.browser.new_context(
            java_script_enabled=javascript, viewport=size, ignore_https_errors=self.https
        )
        context.set_default_timeout(20_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on(
            "console", lambda m: m.type == "error" and self.console_errors.append(f"{page.url}: {m.text}")
        )
        page.on("pageerror", lambda e: self.console_errors.append(f"{page.url}: {e}"))
        self.opened.append(page)
        return page


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash.setdefault(FAILED, False)
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def pages(browser: Any, web: WebApp, request: pytest.FixtureRequest) -> Iterator[Pages]:
    opened = Pages(browser, https=web.origin.startswith("https:"))
    yield opened
    if request.node.stash.get(FAILED, False):
        print("console errors:", *opened.console_errors, sep="\n  ")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for i, page in enumerate(opened.opened):
            shot = ARTIFACTS / f"{request.node.name}-{i}.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
            except Exception as exc:  # a closed page cannot be shot; say so and go on
                print(f"no screenshot of page {i}: {exc}")
    for context in opened.contexts:
        context.close()
