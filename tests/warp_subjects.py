"""Real portraits, keyed performances and an INDEPENDENT measurer for the warp engine's tests and its
realism bench (bench/bench_warp_realism.py).

The engine finds the portrait's landmarks with mediapipe; everything here measures with dlib (its HOG
face detector, its 68-point shape predictor and its ResNet identity embedding, the models that ship in
the offline ``face_recognition_models`` wheel), so the engine is not graded by its own detector.
"""
from __future__ import annotations

import functools
import importlib.util
import os

import cv2
import numpy as np
from skimage import data


def _rgb_png(rgb: np.ndarray) -> bytes:
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))
    return png.tobytes()


def astronaut() -> np.ndarray:
    """Eileen Collins, smiling with her teeth showing (512x512, public domain)."""
    return data.astronaut()


def grace_hopper() -> np.ndarray:
    """Grace Hopper in uniform and cap (matplotlib's sample photo, 512x600)."""
    import matplotlib
    path = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "sample_data", "grace_hopper.jpg")
    return cv2.imread(path)[:, :, ::-1].copy()


def with_glasses(rgb: np.ndarray, eyes: np.ndarray, rims_only: bool = False) -> np.ndarray:
    """Rigid glasses drawn onto a photo: dark rims round each eye, a bridge, temple arms and a lens
    highlight. ``eyes`` are the (left, right) eye centres in pixels. ``rims_only``: a uint8 mask of
    the rims instead (255 on them)."""
    out = np.zeros(rgb.shape[:2], np.uint8) if rims_only else rgb.copy()
    l, r = np.asarray(eyes, np.float64)
    iod = np.linalg.norm(r - l)
    rx, ry = int(0.36 * iod), int(0.25 * iod)
    thick = max(2, int(0.045 * iod))
    colour = 255 if rims_only else (25, 20, 18)
    for c in (l, r):
        cv2.ellipse(out, (int(c[0]), int(c[1] + 0.04 * iod)), (rx, ry), 0, 0, 360, colour, thick, cv2.LINE_AA)
    if rims_only:
        return out
    cv2.line(out, (int(l[0] + rx), int(l[1])), (int(r[0] - rx), int(r[1])), (25, 20, 18), thick, cv2.LINE_AA)
    for c, side in ((l, -1), (r, 1)):  # temple arms
        start = (int(c[0] + side * rx), int(c[1]))
        end = (int(c[0] + side * (rx + 0.3 * iod)), int(c[1] - 0.05 * iod))
        cv2.line(out, start, end, (25, 20, 18), thick, cv2.LINE_AA)
    glare = out.copy()
    for c in (l, r):  # a diagonal highlight on each lens, up and to the left of the pupil
        p0 = (int(c[0] - 0.2 * iod), int(c[1] - 0.02 * iod))
        p1 = (int(c[0] - 0.1 * iod), int(c[1] - 0.16 * iod))
        cv2.line(glare, p0, p1, (255, 255, 255), max(2, int(0.03 * iod)), cv2.LINE_AA)
    return cv2.addWeighted(glare, 0.55, out, 0.45, 0)


def oil_painting(rgb: np.ndarray) -> np.ndarray:
    """A painted look: OpenCV contrib's oil-painting filter."""
    return cv2.xphoto.oilPainting(np.ascontiguousarray(rgb[:, :, ::-1]), 3, 1)[:, :, ::-1].copy()


def hopper_eyes() -> np.ndarray:
    pts = measurer().landmarks(grace_hopper())
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0)])


def astronaut_eyes() -> np.ndarray:
    pts = measurer().landmarks(astronaut())
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0)])


def portraits() -> dict[str, np.ndarray]:
    """The bench's subjects: a smiling photo, the same with glasses, a photo with glasses and a cap
    (a squinting, wrinkled face where dlib's eye points are unreliable), a painting."""
    hop = grace_hopper()
    eyes = hopper_eyes()
    return {"astronaut": astronaut(), "astronaut_glasses": with_glasses(astronaut(), astronaut_eyes()),
            "hopper_glasses": with_glasses(hop, eyes),
            "painting": oil_painting(astronaut())}


class Measurer:
    """dlib's detector, 68-point predictor and identity embedding."""

    def __init__(self):
        import dlib
        models = os.path.join(os.path.dirname(importlib.util.find_spec("face_recognition_models").origin), "models")
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(os.path.join(models, "shape_predictor_68_face_landmarks.dat"))
        self.embedder = dlib.face_recognition_model_v1(os.path.join(models, "dlib_face_recognition_resnet_model_v1.dat"))

    def _shape(self, rgb: np.ndarray):
        rgb = np.ascontiguousarray(rgb)
        faces = self.detector(rgb, 1)
        if not faces:
            return None
        face = max(faces, key=lambda r: r.area())
        return self.predictor(rgb, face)

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        s = self._shape(rgb)
        return None if s is None else np.array([[p.x, p.y] for p in s.parts()], np.float64)

    def embedding(self, rgb: np.ndarray) -> np.ndarray | None:
        s = self._shape(rgb)
        return None if s is None else np.array(self.embedder.compute_face_descriptor(np.ascontiguousarray(rgb), s))


@functools.lru_cache(maxsize=1)
def measurer() -> Measurer:
    return Measurer()


def eye_openness(p: np.ndarray) -> float:
    """Mean eye aspect ratio (lid gap over eye width) of both eyes, 68-point layout."""
    def ear(e):
        return (np.linalg.norm(e[1] - e[5]) + np.linalg.norm(e[2] - e[4])) / (2 * np.linalg.norm(e[0] - e[3]))
    return float((ear(p[36:42]) + ear(p[42:48])) / 2)


def mouth_opening(p: np.ndarray) -> float:
    """Inner-lip gap over the inter-ocular distance."""
    iod = np.linalg.norm(p[36:42].mean(0) - p[42:48].mean(0))
    return float(np.mean(p[[65, 66, 67], 1] - p[[63, 62, 61], 1]) / iod)


# ---- keyed performances, as targets in the portrait's own pixels -------------------------------

def _face_unit(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[8] - points[27]))


def open_mouth(points: np.ndarray, amount: float) -> np.ndarray:
    """The jaw dropped by ``amount`` x 0.25 of the nose-bridge-to-chin height: the lower lip, the inner
    lower lip and the chin go down, the jaw's sides less."""
    t = points.astype(np.float64).copy()
    drop = amount * 0.25 * _face_unit(points)
    for i, k in zip(range(4, 13), (0.2, 0.45, 0.7, 0.9, 1.0, 0.9, 0.7, 0.45, 0.2)):
        t[i, 1] += drop * k
    t[[55, 56, 57, 58, 59], 1] += drop * 0.85
    t[[65, 66, 67], 1] += drop * 0.8
    t[[54, 48], 1] += drop * 0.2
    t[[60, 64], 1] += drop * 0.3
    return t


def blink(points: np.ndarray, closure: float) -> np.ndarray:
    """Upper lids lowered by ``closure`` (0 open .. 1 shut onto the lower lid)."""
    t = points.astype(np.float64).copy()
    for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46)):
        t[up] = t[up] + closure * (t[lo] - t[up])
    return t


def head_move(points: np.ndarray, shift=(0.0, 0.0), roll_deg: float = 0.0) -> np.ndarray:
    """The whole face moved rigidly: rotated about the nose bridge and shifted by ``shift`` pixels."""
    c = points[27]
    a = np.deg2rad(roll_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - c) @ rot.T + c + np.asarray(shift)


def compose(linear: np.ndarray, patch) -> np.ndarray:
    out = linear.copy()
    h, w = patch.matte.shape
    out[patch.y0:patch.y0 + h, patch.x0:patch.x0 + w] = patch.rgb
    return out


def png_bytes(rgb: np.ndarray) -> bytes:
    return _rgb_png(rgb)
