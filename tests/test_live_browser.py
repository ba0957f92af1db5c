"""`ernerf-live`'s page in headless Chromium with a fake microphone, as a user would open it: frames arrive, the
portrait's mouth moves while the microphone speaks and rests in its pauses, picture and sound stay within a frame
of each other, and a second tab does not break the first."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import pytest
import soundfile
from sample_clip import speech_like
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from tiny_pipeline import audio_sensitive_pipeline

from ernerf_ns.audio.logmel import SAMPLE_RATE
from ernerf_ns.live.portrait_stream import PortraitStream
from ernerf_ns.live.server import LiveServer
from ernerf_ns.synthetic import SyntheticPortrait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SHOTS = Path("/tmp/live_shots")
"""Copies of the page's screenshots for people to look at (the README's comes from here)."""
WAIT_S = 60.0
"""Longest wait for a condition on the page."""
FRAME_MS = 40.0

T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs Debian's chromium and chromium-driver in /usr/bin (.ci/run installs them)",
)


def _wait(condition: Callable[[], T], what: str, timeout: float = WAIT_S) -> T:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def server(synthetic_portrait: SyntheticPortrait) -> Iterator[LiveServer]:
    """The live server on an untrained, audio-sensitive ernerf-tiny head, with static pose and fixed eye, so that
    only the audio changes the frames."""
    pipeline = audio_sensitive_pipeline(synthetic_portrait.path)
    with LiveServer(PortraitStream(pipeline, poses="static", eye="fixed", eye_value=0.3), port=0) as live:
        yield live


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What the fake microphone plays, in a loop: 1.5 s of silence, 1.5 s of speech."""
    silence = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    path = tmp_path_factory.mktemp("mic") / "speech.wav"
    soundfile.write(str(path), np.concatenate([silence, speech_like(1.5, SAMPLE_RATE)]), SAMPLE_RATE, "PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(microphone: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=800,800",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _stats(driver: webdriver.Chrome) -> dict:
    return driver.execute_script("return window.liveStats")


def _canvas_digest(driver: webdriver.Chrome) -> str:
    return hashlib.sha1(
        driver.execute_script("return document.getElementById('portrait').toDataURL()").encode()
    ).hexdigest()


def test_the_page_talks_with_the_microphone_in_sync_and_survives_a_second_tab(server, browser):
    browser.get(f"http://127.0.0.1:{server.port}/")
    _wait(lambda: _stats(browser)["hello"], "the server's hello")
    browser.find_element(By.ID, "start").click()
    browser.find_element(By.ID, "mic").click()
    _wait(lambda: _stats(browser)["micSending"], "the microphone to stream")
    _wait(lambda: (_stats(browser).get("server") or {}).get("source") == "mic", "the server to take the microphone")
    _wait(lambda: _stats(browser)["framesDrawn"] > 25, "frames on the canvas")

    # Watch the canvas over two loops of the microphone's file: rest frames repeat, speech frames change.
    digests, end = [], time.monotonic() + 7.0
    while time.monotonic() < end:
        digests.append(_canvas_digest(browser))
        time.sleep(0.05)
    longest_rest = max(len(list(run)) for run in _runs(digests))
    assert longest_rest * 0.05 >= 0.5, "the mouth rests for at least half a second in each 1.5-s pause"
    assert len(set(digests)) >= 8, "the portrait changes while the microphone speaks"
    stats = _stats(browser)
    assert stats["maxSkewMs"] < FRAME_MS, "each frame is drawn within a frame's time of its sound"
    assert not stats["errors"], stats["errors"]
    SHOTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(SHOTS / "live.png"))

    # A second tab watches too; the first keeps drawing.
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")
    browser.get(f"http://127.0.0.1:{server.port}/")
    _wait(lambda: _stats(browser)["framesReceived"] > 25, "frames in the second tab")
    assert (_stats(browser)["server"] or {}).get("viewers", 0) >= 2 or _wait(
        lambda: (_stats(browser).get("server") or {}).get("viewers") == 2, "the server to count two viewers"
    )
    browser.close()
    browser.switch_to.window(first)
    drawn = _stats(browser)["framesDrawn"]
    _wait(lambda: _stats(browser)["framesDrawn"] > drawn + 25, "the first tab to keep drawing")
    assert not _stats(browser)["errors"]


def _runs(values: list) -> Iterator[list]:
    """Runs of equal consecutive values."""
    run: list = []
    for value in values:
        if run and value != run[-1]:
            yield run
            run = []
        run.append(value)
    if run:
        yield run
