"""A real browser: JupyterLab on localhost, driven in headless Chromium, runs lesson 04 and moves a widget.

The widget tests in test_widgets.py call the drawing functions without a browser. This test checks
what they cannot: that JupyterLab renders the ipywidgets front end, that the kernel behind it
answers a slider, and that the figure on the page changes. Playwright drives the system's Chromium
(Debian's `chromium` package; Playwright's own browser download is not needed). Screenshots go to
build/browser/.

Skipped, with the reason in the test report, only when no Chromium is installed; `.ci/run`
installs it.

On a busy machine the first kernel start in a new virtual environment can take minutes (Python
compiles the byte code of every package it imports), so the test waits, up to KERNEL_START_S
(5 minutes), for the notebook's kernel to report "idle" (through the server's sessions API and the
notebook's kernel-status indicator) before it presses "Run All", and then up to RUN_ALL_S
(15 minutes) for every cell to finish.
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
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the local server, never through a proxy
KERNEL_START_S = 300  # the first kernel start in a fresh venv on a loaded 2-core machine took over a minute
RUN_ALL_S = 900  # lesson 04 runs in about 35 s on an idle 2-core machine; a loaded one took over 400 s
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
        (settings / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values), encoding="utf-8")
    port, token = free_port(), os.urandom(16).hex()
    env = dict(
        os.environ, COURSE_ROOT=str(COURSE), JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    log = (tmp_path / "jupyterlab.log").open("w", encoding="utf-8")
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
                pytest.fail(f"JupyterLab exited with code {server.returncode}:\n{(tmp_path / 'jupyterlab.log').read_text(encoding='utf-8')[-3000:]}")
            try:
                LOCAL.open(f"{url}/api/status?token={token}", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 120 s:\n{(tmp_path / 'jupyterlab.log').read_text(encoding='utf-8')[-3000:]}")
                time.sleep(0.5)
        yield f"{url}/lab/tree/{NOTEBOOK}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def wait_for_idle_kernel(page, lab_url: str, timeout_s: float = KERNEL_START_S) -> float:
    """Wait until the notebook's kernel has started and is idle; returns the seconds waited.

    Asks the server (GET /api/sessions: the kernel's execution_state) and the page (the notebook's
    kernel-status indicator, data-status="idle"), so that "Run All" is pressed only when the front
    end is connected to a ready kernel.
    """
    base, token = lab_url.split("/lab/", 1)[0], lab_url.rsplit("token=", 1)[1]
    started, state = time.monotonic(), "no session yet"
    while time.monotonic() - started < timeout_s:
        try:
            with LOCAL.open(f"{base}/api/sessions?token={token}", timeout=10) as response:
                sessions = json.loads(response.read().decode("utf-8"))
        except OSError as error:
            state = f"sessions API: {error}"
        else:
            ours = [s for s in sessions if s.get("path", "").endswith(NOTEBOOK)]
            state = ours[0]["kernel"].get("execution_state", "unknown") if ours else "no session yet"
            if state == "idle":
                break
        time.sleep(1)
    else:
        pytest.fail(f"the kernel of {NOTEBOOK} was not idle within {timeout_s} s (last state: {state})")
    remaining_ms = max(1_000, (timeout_s - (time.monotonic() - started)) * 1000)
    page.wait_for_function(
        "() => { const e = document.querySelector('.jp-Notebook-ExecutionIndicator');"
        " return e === null || e.dataset.status === 'idle'; }", timeout=remaining_ms, polling=500)
    return time.monotonic() - started


def test_jupyterlab_runs_lesson_04_and_its_playground_answers_a_slider(jupyter_lab):
    executable = chromium_path()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
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
            code_cells = sum(cell["cell_type"] == "code" for cell in json.loads((COURSE / "notebooks" / NOTEBOOK).read_text(encoding="utf-8"))["cells"])
            page.wait_for_function(  # cells are rendered progressively: wait for all of them
                f"() => document.querySelectorAll('.jp-Notebook .jp-CodeCell').length === {code_cells}", timeout=60_000)

            kernel_wait = wait_for_idle_kernel(page, jupyter_lab)

            # Run > Run All Cells, through the menu as a learner would.
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
            prompts = "[...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"
            page.wait_for_function(f"() => {prompts}.some(p => p.includes('*') || /\\d/.test(p))", timeout=120_000)
            try:
                page.wait_for_function(f"() => !{prompts}.some(p => p.includes('*'))", timeout=RUN_ALL_S * 1000, polling=1000)
            except PlaywrightTimeout:
                page.screenshot(path=str(SCREENSHOTS / "lesson04-run-all-timeout.png"))
                texts = page.evaluate(f"() => {prompts}")
                done = sum(bool(re.fullmatch(r"\[\d+\]:", text)) for text in texts)
                pytest.fail(f"Run All had not finished after {RUN_ALL_S} s: {done} of {code_cells} code cells done "
                            f"(prompts: {texts}); a screenshot is in {SCREENSHOTS}")
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
    print(f"browser test: kernel idle after {kernel_wait:.0f} s; all {code_cells} code cells ran in {ran:.0f} s; whole test {time.monotonic() - started:.0f} s; screenshots in {SCREENSHOTS}")
