"""The explorer's page in a real browser: headless Chromium opens it from uvicorn on this
machine, picks a run the tests trained, samples, interpolates and moves the slider, decodes a
point of the latent plane, and the console stays free of errors."""
from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="genzoo[serve] is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="genzoo[serve] is not installed")

from conftest import chromium  # noqa: E402
from genzoo.serve.app import create_app  # noqa: E402


@pytest.fixture
def server(explorer_runs, tmp_path):
    """The explorer on 127.0.0.1 at a free port, in a thread, over the tests' runs and a copy
    of the VAE run that looks as if it were still training."""
    root = tmp_path / "runs"
    shutil.copytree(explorer_runs, root)
    config = root / "vae" / "config.yaml"
    (root / "live").mkdir()
    (root / "live" / "config.yaml").write_text(config.read_text().replace("steps: 3", "steps: 100"))
    shutil.copy(root / "vae" / "metrics.jsonl", root / "live" / "metrics.jsonl")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(root), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        assert thread.is_alive() and time.time() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", root
    srv.should_exit = True
    thread.join(timeout=30)


def loaded(browser, selector: str) -> list[str]:
    """The sources of the images under ``selector`` once all have loaded (at least one)."""
    return browser.execute_script(
        "const imgs = Array.from(document.querySelectorAll(arguments[0]));"
        "return imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0)"
        " ? imgs.map(i => i.getAttribute('src')) : null;", selector)


def test_pick_sample_interpolate_in_a_real_browser(server):
    url, root = server
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
    browser = chromium()
    wait = WebDriverWait(browser, 60, poll_frequency=0.1)
    try:
        browser.get(url + "/")
        row = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, '#runs tr[data-id="vae"]'))
        assert {r.get_attribute("data-id") for r in browser.find_elements(
            By.CSS_SELECTOR, "#runs tbody tr")} == {"vae", "text/gpt", "live"}
        row.click()
        wait.until(lambda b: b.find_element(By.ID, "sample-section").is_displayed())
        assert browser.find_element(By.ID, "run-title").text == "vae"
        assert browser.execute_script("return document.querySelectorAll('#curves polyline').length") >= 1
        assert wait.until(lambda b: loaded(b, "#grid-view img"))
        assert wait.until(lambda b: loaded(b, "#showcase img"))

        n = browser.find_element(By.CSS_SELECTOR, "#sample-form input[name=n]")
        n.clear()
        n.send_keys("4")
        browser.find_element(By.ID, "sample-button").click()
        [src] = wait.until(lambda b: loaded(b, "#sample-result img"))
        assert src.startswith("/api/jobs/") and src.endswith("/sample.png")

        browser.find_element(By.ID, "interp-button").click()
        wait.until(lambda b: b.find_element(By.ID, "interp-slider").is_displayed())
        [first] = wait.until(lambda b: loaded(b, "#interp-view img"))
        assert first.endswith("frame_000.png")
        slider = browser.find_element(By.ID, "interp-slider")
        slider.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        [moved] = wait.until(lambda b: (s := loaded(b, "#interp-view img")) and s != [first] and s)
        assert moved.endswith("frame_002.png")
        assert browser.find_element(By.ID, "interp-t").text == "0.25"

        plane = wait.until(lambda b: (c := b.find_element(By.ID, "plane")).is_displayed() and c)
        plane.click()
        assert wait.until(lambda b: loaded(b, "#plane-view img"))

        browser.find_element(By.CSS_SELECTOR, '#runs tr[data-id="text/gpt"]').click()
        wait.until(lambda b: b.find_element(By.ID, "run-title").text == "text/gpt")
        assert not browser.find_element(By.ID, "interp-section").is_displayed()
        wait.until(lambda b: b.find_element(By.CSS_SELECTOR, "#grid-view pre").text)

        # a training run: its curve grows as metrics.jsonl does
        browser.find_element(By.CSS_SELECTOR, '#runs tr[data-id="live"]').click()
        points = "return document.querySelectorAll('#curves circle').length"
        before = wait.until(lambda b: b.find_element(By.ID, "run-title").text == "live"
                            and b.execute_script(points))
        with open(root / "live" / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 4, "loss": 1.0}) + "\n")
        wait.until(lambda b: b.execute_script(points) == before + 1)

        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == []
    finally:
        browser.quit()
