"""The page in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

Upload a photo and a painting, start, watch the progress events and the live image, get the result.
With IMPASTO_SCREENSHOTS=FOLDER the screenshots (mid-job and result) are written there (the README's).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES
from tests.serve.server import Server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromium-driver are missing; .ci/run installs them")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install -y chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,1100"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(what)


def test_upload_two_images_watch_progress_and_get_the_result(browser, tmp_path):
    from selenium.webdriver.common.by import By

    shots = Path(os.environ.get("IMPASTO_SCREENSHOTS", tmp_path))
    with Server(tmp_path / "data") as server:
        browser.get(server.url + "/")
        find = browser.find_element
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#gallery button"), 20, "the gallery")
        find(By.ID, "content").send_keys(str(EXAMPLES / "lighthouse.jpg"))
        find(By.ID, "style").send_keys(str(EXAMPLES / "starry_night.jpg"))
        size = find(By.ID, "size")
        size.clear()
        size.send_keys("192")
        find(By.ID, "start").click()
        status = find(By.ID, "status")
        live = find(By.ID, "live")
        # progress arrives as events, and the image shows while it forms
        progress = find(By.ID, "progress")
        wait(lambda: int(status.get_attribute("data-events")) >= 3 and "/preview" in (live.get_attribute("src") or "")
             and browser.execute_script("return arguments[0].naturalWidth", live) > 0
             and float(progress.get_attribute("value")) >= 0.4, 120, "live progress")
        assert float(progress.get_attribute("value")) < 1
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(shots / "serve-progress.png"))
        assert wait(lambda: status.get_attribute("data-final"), 240, "the end of the job") == "done", status.text
        wait(lambda: "/result" in live.get_attribute("src")
             and browser.execute_script("return arguments[0].naturalWidth", live) == 192, 20, "the result image")
        assert find(By.ID, "download").is_displayed()
        wait(lambda: browser.find_elements(By.CSS_SELECTOR, "#jobs img[src*=thumbnail]"), 20, "the job list")
        browser.execute_script("window.scrollTo(0, 0)")
        browser.save_screenshot(str(shots / "serve-result.png"))

        # the fast model: its styles come from the gallery; the page hides what it does not use
        from selenium.webdriver.support.ui import Select

        Select(find(By.ID, "method")).select_by_value("multistyle6")
        assert not find(By.ID, "strength-row").is_displayed() and not find(By.ID, "style-drop").is_displayed()
        find(By.CSS_SELECTOR, "#gallery button[data-name=udnie]").click()
        find(By.ID, "deep").click()  # a 16-bit result
        find(By.ID, "start").click()
        wait(lambda: status.get_attribute("data-final") is None, 20, "the second job to start")
        assert wait(lambda: status.get_attribute("data-final"), 60, "the fast job") == "done", status.text
        jobs = server.get("/api/jobs")
        assert [(j["method"], j["status"]) for j in jobs] == [("multistyle6", "done"), ("optimize", "done")]
        assert jobs[0]["options"] == {"style": "udnie", "size": 192}
        assert (jobs[0]["bit_depth"], jobs[1]["bit_depth"]) == (16, None)

        # any painting in one pass: the method's own fields come from /api/methods, and are sent
        Select(find(By.ID, "method")).select_by_value("wct")
        assert find(By.ID, "strength-row").is_displayed() and find(By.ID, "style-drop").is_displayed()
        assert float(find(By.ID, "strength").get_attribute("value")) == 1.0  # wct's default, not the optimization's
        levels = find(By.ID, "field-levels")
        assert levels.get_attribute("value") == "relu4_1,relu3_1,relu2_1,relu1_1"
        assert [o.text for o in Select(find(By.ID, "field-transform")).options] == \
            ["ost", "wct", "adain", "efdm", "histogram"]
        assert find(By.ID, "field-structure").get_attribute("value") == "0.7"
        levels.clear()
        levels.send_keys("relu3_1,relu2_1,relu1_1")
        find(By.ID, "deep").click()  # back to 8 bits
        find(By.ID, "start").click()
        wait(lambda: status.get_attribute("data-final") is None, 20, "the wct job to start")
        assert wait(lambda: status.get_attribute("data-final"), 120, "the wct job") == "done", status.text
        wait(lambda: "/result" in live.get_attribute("src")
             and browser.execute_script("return arguments[0].naturalWidth", live) == 192, 20, "the wct result")
        jobs = server.get("/api/jobs")
        assert (jobs[0]["method"], jobs[0]["status"]) == ("wct", "done")
        assert jobs[0]["options"]["levels"] == ["relu3_1", "relu2_1", "relu1_1"]
        assert jobs[0]["options"]["transform"] == "ost" and jobs[0]["options"]["size"] == 192
        assert jobs[0]["options"]["strength"] == 1.0

        # the quick preset: the one-pass painting first (the preview), then the optimization refines it
        Select(find(By.ID, "method")).select_by_value("optimize")
        assert Select(find(By.ID, "field-init")).first_selected_option.text == ""  # unsent: the preset's applies
        Select(find(By.ID, "field-preset")).select_by_value("quick")
        find(By.ID, "start").click()
        wait(lambda: status.get_attribute("data-final") is None, 20, "the quick job to start")
        assert wait(lambda: status.get_attribute("data-final"), 120, "the quick job") == "done", status.text
        jobs = server.get("/api/jobs")
        assert (jobs[0]["method"], jobs[0]["status"], jobs[0]["options"]["preset"]) == ("optimize", "done", "quick")
        assert "init" not in jobs[0]["options"]
