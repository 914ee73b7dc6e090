"""The page-latency benchmark (benchmarks/page_latency.py) end to end: the app served in this
process, one warm default Run timed in a real headless Chromium, its parts consistent. No timing
thresholds here: the speed targets belong to the benchmark."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from avdemo.zoo import list_models
from benchmarks import page_latency

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(page_latency.CHROMIUM).exists(), reason="needs Debian's chromium"),
    pytest.mark.skipif(not list_models(), reason="needs the shipped model zoo in checkpoints/"),
]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    before = os.environ.get("GRADIO_TEMP_DIR")
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("gradio"))
    demo = page_latency.serve()
    try:
        with sync_playwright() as playwright:
            browser = page_latency.launch_browser(playwright)
            yield page_latency.open_page(browser, demo.local_url, timeout_s=120)
            browser.close()
    finally:
        demo.close()
        page_latency.CLOCK.uninstall()
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before


def test_one_warm_run_splits_into_parts_that_add_up(page):
    page_latency.measure_run(page, timeout_s=120)  # untimed: warms the server and the page's plots
    # The page's settings with a new PGD seed: the same settings give byte-identical outputs,
    # which the page leaves as they are, so only a new result shows that the Run drew.
    run = page_latency.measure_run(page, timeout_s=120, seed=1)
    parts = [run[key] for key in page_latency.PARTS]
    assert all(part >= 0 for part in parts), run
    assert sum(parts) == pytest.approx(run["total_ms"], abs=5)
    assert run["server_ms"] > 0 and run["total_ms"] > run["server_ms"]
    assert "run_attack" in run["handlers"]
    assert run["click"] < run["server_start"] < run["server_end"] <= run["first_change"] <= run["last_change"]
    assert run["bytes"] > 0 and run["bytes_by_type"].get("text/event-stream", 0) > 0  # the outputs came by the stream
    assert run["drew"] and run["summary_after"] and run["summary_after"] != run["summary_before"]
