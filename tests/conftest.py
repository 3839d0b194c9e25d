import cv2
import pytest
from skimage import data

from livingportrait_backend.landmarks.performance import builtin_performance
from livingportrait_wire.landmarks import LandmarkSequence, save_sequence

from backend_process import BackendProcess


@pytest.fixture(scope="session")
def astronaut_png(tmp_path_factory) -> str:
    """The public-domain astronaut portrait (scikit-image) as an 8-bit sRGB PNG file."""
    path = tmp_path_factory.mktemp("portrait") / "astronaut.png"
    cv2.imwrite(str(path), data.astronaut()[:, :, ::-1])
    return str(path)


@pytest.fixture(scope="session")
def short_performance() -> LandmarkSequence:
    """Eight frames of the built-in performance (frames 1-8): enough motion, fast to render."""
    full = builtin_performance()
    keep = slice(0, 8)
    return LandmarkSequence(full.landmarks[keep], full.frames[keep], full.image_size)


@pytest.fixture(scope="session")
def short_performance_npz(tmp_path_factory, short_performance) -> str:
    path = tmp_path_factory.mktemp("performance") / "talk.npz"
    save_sequence(short_performance, path)
    return str(path)


@pytest.fixture(scope="module")
def backend():
    """A real backend process shared by a test module."""
    proc = BackendProcess()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def tiny_meta_run(tmp_path_factory) -> str:
    """One short meta-learning run (tiny preset, 100 steps on synthetic faces) through the real CLI,
    shared by the tests that judge what it learned."""
    from livingportrait_backend.cli import main
    from meta_run import DATA

    run = str(tmp_path_factory.mktemp("tiny_meta") / "run")
    assert main(["train", "--config", "tiny", "--data", DATA, "--out", run, "--steps", "100",
                 "--threads", "1", "--checkpoint-every", "1000", "--log-every", "50", "--image-every", "0"]) == 0
    return run

