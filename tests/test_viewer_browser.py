"""`ns-viewer` on a checkpoint trained here, opened in headless Chromium like a user would: the page shows the
trained portrait, and moving the GUI's audio slider changes the mouth more than the rest of the image.

Where the portrait lands on the page: the model's `TrainingViewOnConnect` opens each browser tab on training
camera 0 with its vertical field of view, so the render shows that frame's vertical extent over the canvas
height, centred; its landmark rectangles (face, lips) map to canvas pixels with the camera's intrinsics.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, TypeVar

import cv2
import numpy as np
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement

from ernerf_ns.data.talking_portrait_dataparser import TalkingPortraitDataParserConfig
from ernerf_ns.synthetic import SyntheticPortrait, make_synthetic_portrait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--force-device-scale-factor=1",
    # Near-square canvas beside the 320 px control panel, so a small "Max res" still gives a tall render.
    "--window-size=1100,900",
)
SCRIPTS = Path(sys.executable).parent
"""Where pip put nerfstudio's console scripts, next to this interpreter."""
FRAMES = 100
"""Frames of the synthetic clip (90 train, 10 val), as in test_training: enough mouth openings to learn from."""
TRAIN_STEPS = 300
"""Head-stage steps: by ~150 the mouth of ernerf-tiny already follows the audio on this clip."""
MAX_RES = 164
"""Viewer "Max res" the test sets (its minimum 64, one slider step up): the longer render side, in pixels.
Nerfstudio's default 512 would take tens of seconds per CPU render."""
SHOTS = Path("/tmp/viewer_shots")
"""Copies of the screenshots for people to look at."""
RENDER_TIMEOUT_S = 120.0
"""Longest wait for one render to reach the page."""
SERVER_TIMEOUT_S = 180.0
"""Longest wait for ns-viewer to load the checkpoint and serve the page."""

T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs Debian's chromium and chromium-driver in /usr/bin (.ci/run installs them)",
)


@dataclass(frozen=True)
class TrainingView:
    """Training camera 0 as the viewer opens on it: intrinsics, landmark rectangles and the true image."""

    fx: float
    fy: float
    cx: float
    cy: float
    height: int
    face: tuple[float, float, float, float]
    lips: tuple[float, float, float, float]
    image: np.ndarray
    """[H, W, 3] float RGB in [0, 1]."""

    def to_canvas(self, rect: tuple[float, float, float, float], width: int, height: int) -> tuple[int, ...]:
        """A [x0, y0, x1, y1] rectangle in training pixels as canvas pixels: the viewer keeps the vertical field
        of view, so one training pixel spans height / H canvas pixels about the canvas centre."""
        scale_y = height / self.height
        scale_x = scale_y * self.fy / self.fx
        x0, y0, x1, y1 = rect
        return (
            int(round(width / 2 + (x0 - self.cx) * scale_x)),
            int(round(height / 2 + (y0 - self.cy) * scale_y)),
            int(round(width / 2 + (x1 + 1 - self.cx) * scale_x)),
            int(round(height / 2 + (y1 + 1 - self.cy) * scale_y)),
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen) -> None:
    """End the process and everything it started (it leads its own process group): data loader workers too."""
    for sig, wait_s in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            pass


def _wait_for(condition: Callable[[], Optional[T]], timeout_s: float, what: str, poll_s: float = 0.5) -> T:
    """Poll `condition` until it returns something; an element React replaced meanwhile counts as not yet."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = condition()
        except StaleElementReferenceException:
            result = None
        if result is not None:
            return result
        time.sleep(poll_s)
    raise TimeoutError(f"waited {timeout_s:.0f} s for {what}")


def _retry_stale(action: Callable[[], T], attempts: int = 5) -> T:
    """Run a GUI action again when React re-rendered the element under it (the viewer updates its panel often)."""
    for _ in range(attempts - 1):
        try:
            return action()
        except StaleElementReferenceException:
            time.sleep(0.2)
    return action()


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> SyntheticPortrait:
    return make_synthetic_portrait(tmp_path_factory.mktemp("viewer") / "data", FRAMES, 64, seed=0, write_video=False)


@pytest.fixture(scope="module")
def training_view(portrait: SyntheticPortrait) -> TrainingView:
    outputs = TalkingPortraitDataParserConfig(data=portrait.path).setup().get_dataparser_outputs("train")
    camera = outputs.cameras[0]
    image = cv2.cvtColor(cv2.imread(str(outputs.image_filenames[0])), cv2.COLOR_BGR2RGB)
    return TrainingView(
        fx=float(camera.fx),
        fy=float(camera.fy),
        cx=float(camera.cx),
        cy=float(camera.cy),
        height=int(camera.height),
        face=tuple(float(v) for v in outputs.metadata["face_rects"][0]),
        lips=tuple(float(v) for v in outputs.metadata["lips_rects"][0]),
        image=image.astype(np.float32) / 255,
    )


@pytest.fixture(scope="module")
def trained_config(portrait: SyntheticPortrait, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`ns-train ernerf-tiny` as a user types it, without the periodic eval renders; returns its config.yml."""
    output = tmp_path_factory.mktemp("viewer_runs")
    never = str(10 * TRAIN_STEPS)
    command = [
        str(SCRIPTS / "ns-train"),
        "ernerf-tiny",
        "--data",
        str(portrait.path),
        "--output-dir",
        str(output),
        "--max-num-iterations",
        str(TRAIN_STEPS),
        "--steps-per-save",
        str(TRAIN_STEPS),
        "--steps-per-eval-batch",
        never,
        "--steps-per-eval-image",
        never,
        "--steps-per-eval-all-images",
        never,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"ns-train failed:\n{result.stderr[-6000:]}"
    (config,) = output.glob("**/config.yml")
    return config


@pytest.fixture(scope="module")
def viewer_url(trained_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`ns-viewer --load-config` on a free port, without training-image frustums in the scene."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("viewer_log") / "ns-viewer.log"
    command = [
        str(SCRIPTS / "ns-viewer"),
        "--load-config",
        str(trained_config),
        "--viewer.websocket-port",
        str(port),
        "--viewer.websocket-host",
        "127.0.0.1",
        "--viewer.max-num-display-images",
        "0",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def serving() -> Optional[bool]:
        if process.poll() is not None:
            raise RuntimeError(f"ns-viewer exited with {process.returncode}:\n{log_path.read_text()[-6000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return True if response.status == 200 else None
        except OSError:
            return None

    try:
        _wait_for(serving, SERVER_TIMEOUT_S, "ns-viewer to serve the page")
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium_profile')}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class ViewerPage:
    """The nerfstudio viewer page, driven through its GUI by label, as a user reads it."""

    def __init__(self, driver: webdriver.Chrome, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def labelled(self, label: str) -> WebElement:
        """The input a GUI label names (viser puts `<label for=id>` beside each control)."""

        def find() -> Optional[WebElement]:
            labels = self.driver.find_elements(By.XPATH, f"//label[normalize-space()='{label}']")
            return self.driver.find_element(By.ID, labels[0].get_attribute("for")) if labels else None

        return _wait_for(find, SERVER_TIMEOUT_S, f"the GUI control '{label}'")

    def thumb(self, label: str) -> WebElement:
        return self.labelled(label).find_element(By.CSS_SELECTOR, "[role=slider]")

    def slider_keys(self, label: str, *keys: str) -> None:
        """Keys on a slider's thumb (Home, arrows), as a keyboard user moves it."""
        for key in keys:
            _retry_stale(lambda key=key: self.thumb(label).send_keys(key))

    def type_into_slider(self, label: str, value: int) -> None:
        """Type into the number box viser shows beside each slider."""

        def type_value() -> None:
            box = self.labelled(label).find_element(By.XPATH, "./following-sibling::*//input")
            box.send_keys(Keys.CONTROL, "a")
            box.send_keys(str(value))

        _retry_stale(type_value)

    def slider_value(self, label: str) -> float:
        return float(_retry_stale(lambda: self.thumb(label).get_attribute("aria-valuenow")))

    def choose(self, label: str, option: str) -> list[str]:
        """Pick `option` in a dropdown; returns every option it listed."""

        def pick() -> list[str]:
            self.labelled(label).click()
            elements = _wait_for(
                lambda: self.driver.find_elements(By.CSS_SELECTOR, "[role=option]") or None, 10, f"'{label}' options"
            )
            texts = [element.text for element in elements]
            elements[texts.index(option)].click()
            return [text for text in texts if text]

        return _retry_stale(pick)

    def resolution(self) -> Optional[tuple[int, int]]:
        """The render size the viewer reports under its buttons ("Resolution: WxHpx")."""
        for element in self.driver.find_elements(By.XPATH, "//p[contains(., 'Resolution:')]"):
            match = re.search(r"Resolution: (\d+)x(\d+)px", element.text)
            if match:
                return int(match.group(1)), int(match.group(2))
        return None

    def canvas(self) -> np.ndarray:
        """What the three.js canvas shows, [H, W, 3] float RGB in [0, 1]."""
        element = self.driver.find_element(By.CSS_SELECTOR, "canvas[data-engine^='three.js']")
        png = np.frombuffer(element.screenshot_as_png, dtype=np.uint8)
        return cv2.cvtColor(cv2.imdecode(png, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32) / 255

    def wait_for_render(self, unlike: Optional[np.ndarray] = None) -> np.ndarray:
        """The canvas once a render of "Max res" size is shown and has stopped changing (and differs from `unlike`).

        After a change the viewer shows quick low-resolution renders first, then one of "Max res"; the size it
        reports tells which one is up. Until the viewer has taken a change in, the canvas still shows the last
        render: callers make sure that one cannot pass (`unlike`, or a "Max res" it has never rendered at).
        """
        previous: list[np.ndarray] = []

        def settled() -> Optional[np.ndarray]:
            size = self.resolution()
            shot = self.canvas()
            done = (
                size is not None
                and max(size) == MAX_RES
                and bool(previous)
                and previous[-1].shape == shot.shape
                and np.abs(previous[-1] - shot).mean() < 1e-3
                and (unlike is None or np.abs(unlike - shot).max() > 0.1)
            )
            previous[:] = [shot]
            return shot if done else None

        return _wait_for(settled, RENDER_TIMEOUT_S, "the viewer's render to settle", poll_s=1.0)

    def save(self, name: str, image: Optional[np.ndarray] = None) -> None:
        """The whole page (or `image`) as PNG under the test's folder and SHOTS."""
        path = self.shots / f"{name}.png"
        if image is None:
            self.driver.save_screenshot(str(path))
        else:
            cv2.imwrite(str(path), cv2.cvtColor((image * 255).round().astype(np.uint8), cv2.COLOR_RGB2BGR))
        SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SHOTS / path.name)


@pytest.fixture(scope="module")
def page(viewer_url: str, browser: webdriver.Chrome, tmp_path_factory: pytest.TempPathFactory) -> ViewerPage:
    """The viewer page, open and showing its GUI."""
    page = ViewerPage(browser, tmp_path_factory.mktemp("viewer_shots"))
    browser.get(viewer_url)
    try:
        page.labelled("Audio frame")
    except (TimeoutError, WebDriverException):
        page.save("viewer_failed_to_open_page")
        raise
    return page


@pytest.fixture(scope="module")
def output_options(page: ViewerPage) -> list[str]:
    """Shows the composited `rgb` output; returns the outputs the dropdown lists."""
    return page.choose("Output type", "rgb")


@pytest.fixture(scope="module")
def closed_mouth(page: ViewerPage, portrait: SyntheticPortrait, output_options: list[str]) -> np.ndarray:
    """The settled canvas with the audio frame of the most closed mouth.

    "Max res" goes from nerfstudio's 512 to MAX_RES last: a render of that size can only come after every
    setting above reached the viewer, so the wait cannot settle on an older render.
    """
    page.type_into_slider("Audio frame", int(np.argmin(portrait.mouth_open)))
    page.slider_keys("Max res", Keys.HOME, Keys.ARROW_RIGHT)
    assert page.slider_value("Max res") == MAX_RES
    try:
        shot = page.wait_for_render()
    finally:
        page.save("viewer_closed_mouth_page")
    page.save("viewer_closed_mouth_canvas", shot)
    return shot


def _crop(image: np.ndarray, rect: tuple[int, ...]) -> np.ndarray:
    x0, y0, x1, y1 = rect
    return image[max(y0, 0) : y1, max(x0, 0) : x1]


def test_viewer_lists_the_model_outputs(output_options: list[str]) -> None:
    assert {"rgb", "depth", "accumulation", "audio_attention", "eye_attention"} <= set(output_options)


def test_page_shows_the_trained_portrait(closed_mouth: np.ndarray, training_view: TrainingView) -> None:
    """Not an empty canvas: the face rectangle holds the face of training frame 0 (same layout of colours)."""
    height, width = closed_mouth.shape[:2]
    shown = _crop(closed_mouth, training_view.to_canvas(training_view.face, width, height))
    x0, y0, x1, y1 = (int(round(v)) for v in training_view.face)
    truth = training_view.image[y0 : y1 + 1, x0 : x1 + 1]
    shown = cv2.resize(shown, truth.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert shown.std() > 0.05, "the face region of the canvas is flat"
    correlation = np.corrcoef(shown.mean(-1).ravel(), truth.mean(-1).ravel())[0, 1]
    assert correlation > 0.6, f"canvas face region does not look like the training face (r = {correlation:.2f})"


def test_audio_slider_moves_the_mouth(
    page: ViewerPage, closed_mouth: np.ndarray, portrait: SyntheticPortrait, training_view: TrainingView
) -> None:
    opened = int(np.argmax(portrait.mouth_open))
    page.type_into_slider("Audio frame", opened)
    assert page.slider_value("Audio frame") == opened
    try:
        open_mouth = page.wait_for_render(unlike=closed_mouth)
    finally:
        page.save("viewer_open_mouth_page")
    page.save("viewer_open_mouth_canvas", open_mouth)
    change = np.abs(open_mouth - closed_mouth).mean(-1)
    height, width = change.shape
    page.save("viewer_mouth_change", np.repeat(np.clip(change * 4, 0, 1)[..., None], 3, axis=-1))
    lips = _crop(change, training_view.to_canvas(training_view.lips, width, height))
    face = training_view.to_canvas(training_view.face, width, height)
    outside_face = np.ones_like(change, dtype=bool)
    outside_face[max(face[1], 0) : face[3], max(face[0], 0) : face[2]] = False
    assert lips.mean() > 0.03, f"the lips barely changed ({lips.mean():.3f})"
    assert lips.mean() > 5 * change[outside_face].mean(), (
        f"lips changed {lips.mean():.3f}, outside the face {change[outside_face].mean():.3f}"
    )
