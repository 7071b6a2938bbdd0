"""The HTML reports (run, sweep, dataset analysis) opened in a real headless Chromium: every image loads,
the tables are there, the console has no errors. A full-page screenshot of each is kept as a test artifact
in runs/test-artifacts/ (or $SEMILAND_TEST_ARTIFACTS). Skipped, with the reason, without Debian's chromium and
chromium-driver (`make test` installs them when it can)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from semiland.cli import main

from .conftest import REPO, write_config

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="Debian packages chromium and chromium-driver are not installed"
)
ARTIFACTS = Path(os.environ.get("SEMILAND_TEST_ARTIFACTS", REPO / "runs" / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def open_report(browser, html: Path, name: str) -> dict:
    """Load `html`; return its images (src, loaded), table count and console errors; save a screenshot."""
    assert html.is_file(), html
    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(html.as_uri())
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    # the load event can come before every image is decoded: wait (10 s at most) for each to settle
    loaded = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    try:
        WebDriverWait(browser, 10).until(lambda b: b.execute_script(loaded))
    except TimeoutException:
        pass  # reported below, image by image
    state = browser.execute_script(
        "return {images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),"
        " tables: document.querySelectorAll('table').length, height: document.body.scrollHeight}"
    )
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.set_window_size(1280, min(max(900, state["height"] + 40), 12000))  # the whole page in one shot
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    browser.set_window_size(1280, 900)
    return {**state, "errors": errors}


def check(state: dict, min_images: int, min_tables: int) -> None:
    broken = [src for src, ok in state["images"] if not ok]
    assert not broken, f"images that do not load: {broken}"
    assert len(state["images"]) >= min_images and state["tables"] >= min_tables
    assert not state["errors"], state["errors"]


def test_run_report_in_chromium(browser, trained):
    check(open_report(browser, trained / "report.html", "run_report"), min_images=3, min_tables=2)


def test_sweep_report_in_chromium(browser, synth_root, tmp_path):
    cfg = write_config(tmp_path, synth_root, train={"steps": 2, "val_every": 2})
    out = tmp_path / "sweep"
    args = ["bench", "sweep", "--config", str(cfg), "--methods", "supervised", "--seeds", "0", "-o", str(out)]
    assert main(args) == 0
    check(open_report(browser, out / "summary.html", "sweep_report"), min_images=1, min_tables=1)


def test_analysis_report_in_chromium(browser, synth_root, tmp_path):
    out = tmp_path / "an"
    args = ["analyze", str(synth_root), "--preset", "synthetic", "--features", "stats", "--subtile", "32"]
    assert main([*args, "--no-progress", "-o", str(out)]) == 0
    check(open_report(browser, out / "report.html", "analysis_report"), min_images=5, min_tables=1)
