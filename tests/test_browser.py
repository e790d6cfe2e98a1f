"""A real browser: JupyterLab on localhost, driven in headless Chromium, runs lesson 04 and moves a widget.

The widget tests in test_widgets.py call the drawing functions without a browser. This test checks
what they cannot: that JupyterLab renders the ipywidgets front end, that the kernel behind it
answers a slider, and that the figure on the page changes. Playwright drives the system's Chromium
(Debian's `chromium` package; Playwright's own browser download is not needed). Screenshots go to
build/browser/.

Skipped, with the reason in the test report, only when no Chromium is installed; `.ci/run`
installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

COURSE = Path(__file__).resolve().parents[1]
NOTEBOOK = "04_optimisers_and_adam.ipynb"
SCREENSHOTS = COURSE / "build" / "browser"
CHROMIUM_ARGS = [  # no sandbox as root; no background connections, which this machine's closed network refuses
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]


def chromium_path() -> str:
    """The system Chromium: COURSE_CHROMIUM, or `chromium` / `chromium-browser` / `google-chrome` on the PATH."""
    candidates = [os.environ.get("COURSE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    pytest.skip("no Chromium found (tried COURSE_CHROMIUM, chromium, chromium-browser, google-chrome): "
                "install it (Debian: `apt-get install chromium`; .ci/run does this) to run the browser test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyter_lab(tmp_path):
    """JupyterLab serving a copy of the lesson (so that autosave cannot touch the committed notebook)."""
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(COURSE / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    settings = tmp_path / "settings"
    for plugin, values in {
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},  # every cell in the page, off-screen too
    }.items():
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))
    port, token = free_port(), os.urandom(16).hex()
    env = dict(
        os.environ, COURSE_ROOT=str(COURSE), JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    log = (tmp_path / "jupyterlab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 120 s:\n{(tmp_path / 'jupyterlab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield f"{url}/lab/tree/{NOTEBOOK}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def test_jupyterlab_runs_lesson_04_and_its_playground_answers_a_slider(jupyter_lab):
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(jupyter_lab)
            page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=90_000)
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator, .jp-Toolbar-kernelStatus", timeout=60_000)
            code_cells = sum(cell["cell_type"] == "code" for cell in json.loads((COURSE / "notebooks" / NOTEBOOK).read_text())["cells"])
            page.wait_for_function(  # cells are rendered progressively: wait for all of them
                f"() => document.querySelectorAll('.jp-Notebook .jp-CodeCell').length === {code_cells}", timeout=60_000)

            # Run > Run All Cells, through the menu as a learner would.
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
            prompts = "[...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"
            page.wait_for_function(f"() => {prompts}.some(p => p.includes('*') || /\\d/.test(p))", timeout=60_000)
            page.wait_for_function(f"() => !{prompts}.some(p => p.includes('*'))", timeout=400_000, polling=1000)
            ran = time.monotonic() - started
            page.screenshot(path=str(SCREENSHOTS / "lesson04-after-run-all.png"))
            texts = page.evaluate(f"() => {prompts}")
            unrun = [i for i, text in enumerate(texts) if not re.fullmatch(r"\[\d+\]:", text)]
            if unrun:
                cell = page.locator(".jp-Notebook .jp-CodeCell").nth(unrun[0] - 1 if unrun[0] else 0)
                pytest.fail(f"{len(unrun)} of {code_cells} code cells did not run; the last one that ran printed:\n{cell.inner_text()[-3000:]}")
            assert page.get_by_text("Error displaying widget").count() == 0

            playground = page.locator(".widget-interact").first
            playground.scroll_into_view_if_needed()
            figure = playground.locator(".jp-OutputArea-output img").first
            figure.wait_for(timeout=60_000)
            steps = playground.locator(".widget-slider", has_text="steps")
            assert steps.locator(".widget-readout").inner_text().strip() == "200"
            before = figure.get_attribute("src")
            playground.screenshot(path=str(SCREENSHOTS / "lesson04-playground-before.png"))

            steps.locator(".noUi-handle").first.focus()
            for _ in range(5):
                page.keyboard.press("ArrowLeft")  # one slider step (10) each
            page.wait_for_function(
                "element => element.textContent.trim() === '150'", arg=steps.locator(".widget-readout").element_handle(), timeout=30_000)
            page.wait_for_function(  # the kernel redraws: a new figure replaces the old one in the output area
                "before => { const img = document.querySelector('.widget-interact .jp-OutputArea-output img');"
                " return img !== null && img.getAttribute('src') !== before; }", arg=before, timeout=60_000)
            playground.screenshot(path=str(SCREENSHOTS / "lesson04-playground-after.png"))
            assert figure.get_attribute("src").startswith("data:image/png;base64,")
        finally:
            browser.close()
    print(f"browser test: all {code_cells} code cells ran in {ran:.0f} s; whole test {time.monotonic() - started:.0f} s; screenshots in {SCREENSHOTS}")
