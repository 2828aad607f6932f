"""/docs and /redoc work on a server without internet: every file they load comes from the API itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from smartplex_cli.supervisor import free_port, wait_for_http
from tests.requirements import require_or_skip
from webhook_api import API_TITLE

#: What each page must load, and what each file must be.
PAGES = {
    "/docs": {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"},
    "/redoc": {"redoc.standalone.js": "text/javascript", "favicon.png": "image/png"},
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: ReDoc's bundle names its "powered by" logo by URL: without internet only that image is missing.
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _references(html: str) -> list[str]:
    """Every address the page's HTML and inline script name: src, href, and the OpenAPI url."""
    return re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html) + re.findall(
        r"""url\s*:\s*["']([^"']+)["']""", html
    )


@pytest.mark.parametrize("page", sorted(PAGES))
def test_the_docs_pages_load_nothing_from_elsewhere(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    references = _references(response.text)
    assert references, response.text
    outside = [ref for ref in references if not ref.startswith("/") or ref.startswith("//")]
    assert outside == [], f"{page} loads from elsewhere: {outside}"
    assert "http://" not in response.text and "https://" not in response.text, response.text
    for name in PAGES[page]:
        assert any(ref.endswith(f"/{name}") for ref in references), f"{page} does not load {name}"
    for ref in references:
        if ref.endswith("/openapi.json"):
            continue
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        name = ref.rsplit("/", 1)[-1]
        assert asset.headers["content-type"].startswith(PAGES[page][name]), (ref, asset.headers["content-type"])
        assert len(asset.content) > 1000, ref


@pytest.fixture
def api_server(tmp_path: Path) -> Iterator[str]:
    """``smartplex api`` on the embedded database, as a user starts it."""
    port = free_port()
    env = {
        **os.environ,
        "SMARTPLEX_DATA_DIR": str(tmp_path),
        "SMARTPLEX_WEBHOOK_SECRET": "w",
        "SMARTPLEX_ADMIN_SECRET": "a",
    }
    env.pop("SMARTPLEX_DATABASE_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "smartplex_cli", "api", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 60)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.parametrize(("page", "shown"), [("/docs", ".swagger-ui .info .title"), ("/redoc", ".redoc-wrap h1")])
def test_a_browser_without_internet_shows_the_docs(api_server: str, page: str, shown: str) -> None:
    if CHROMIUM is None:
        require_or_skip("Chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    assert httpx.get(f"{api_server}{page}").status_code == 200
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page_ = browser.new_page()

        def offline(route) -> None:  # type: ignore[no-untyped-def]
            if route.request.url.startswith(api_server):
                route.continue_()
            else:  # what a home server without internet would get
                refused.append(route.request.url)
                route.abort()

        page_.route("**/*", offline)
        page_.goto(f"{api_server}{page}")
        page_.locator(shown).first.wait_for(timeout=60_000)
        assert API_TITLE in page_.locator(shown).first.inner_text()
        browser.close()
    assert [url for url in refused if url != REDOC_LOGO] == []
