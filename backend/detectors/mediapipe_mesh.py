"""The offline detector: mediapipe 0.10.21's bundled FaceMesh, mapped to the 68-point iBUG layout.

The face-mesh model ships inside the mediapipe wheel, so this detector works with no download.
Each iBUG point is the mean of one or two mesh vertices chosen to sit where the iBUG annotation
convention puts it (jaw contour, brow tops, nose bridge and base, eye corners and lids, lip contours).

Confidence: FaceMesh reports no per-point confidence, so every point of a face gets the face
detector's score for that face (0.5-1 for faces it accepts); frames filled in by tracking get 0.
"""
from __future__ import annotations

import numpy as np

from ..native_logs import without_native_chatter
from . import Detection, largest_first

# iBUG points 17-67 -> mesh vertices whose mean is that point (the jaw, 0-16, comes from _jaw).
# "right" is the subject's right (image left).
FEATURES_FROM_MESH: tuple[tuple[int, ...], ...] = (
    # right brow 17-21 (outer to inner), left brow 22-26 (inner to outer): between upper and lower edge
    (70, 46), (63, 53), (105, 52), (66, 65), (107, 55),
    (336, 285), (296, 295), (334, 282), (293, 283), (300, 276),
    # nose bridge 27-30 down to the tip
    (168,), (197,), (5,), (4, 1),
    # nose base 31-35, right to left through the point under the tip
    (98,), (97,), (2,), (326,), (327,),
    # right eye 36-41: outer corner, upper lid (2), inner corner, lower lid (2)
    (33,), (160,), (158,), (133,), (153,), (144,),
    # left eye 42-47: inner corner, upper lid (2), outer corner, lower lid (2)
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59: right corner, upper lip to the left corner, lower lip back
    (61,), (40, 39), (37,), (0,), (267,), (269, 270), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67: right corner, upper inner edge, left corner, lower inner edge
    (78,), (81,), (13,), (311,), (308,), (402,), (14,), (178,),
)


# The mesh's face-oval vertices from the right ear (level with the eyes) down to the chin (152) and up
# to the left ear. iBUG spaces its 17 jaw points evenly along this contour, 8 at the chin, whereas the
# mesh's vertices bunch up near the chin, so the jaw is resampled by arc length on each side.
JAW_RIGHT = (127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152)
JAW_LEFT = (152, 377, 400, 378, 379, 365, 397, 288, 361, 323, 454, 356)


def _resample(chain: np.ndarray, count: int) -> np.ndarray:
    """``count`` points evenly spaced by arc length along the polyline ``chain`` (N, 2), ends kept."""
    seg = np.linalg.norm(np.diff(chain, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    at = np.linspace(0.0, arc[-1], count)
    return np.stack([np.interp(at, arc, chain[:, 0]), np.interp(at, arc, chain[:, 1])], axis=1)


def _jaw(mesh: np.ndarray) -> np.ndarray:
    """iBUG jaw points 0-16 (17, 2) from the mesh vertices (468, 2)."""
    right = _resample(mesh[list(JAW_RIGHT)], 9)
    left = _resample(mesh[list(JAW_LEFT)], 9)
    return np.concatenate([right, left[1:]]).astype(np.float32)


def _irises(refined: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """(2, 3) centre x, y and radius of both irises from mediapipe's 10 refined points."""
    out = []
    for k in (0, 5):
        centre, rim = refined[k], refined[k + 1:k + 5]
        out.append([centre[0], centre[1], float(np.linalg.norm(rim - centre, axis=1).mean())])
    return np.asarray(out, np.float32)


def _mapping_matrix() -> np.ndarray:
    """(51, 468) averaging matrix: iBUG points 17-67 = M @ mesh."""
    m = np.zeros((len(FEATURES_FROM_MESH), 468), dtype=np.float32)
    for i, vertices in enumerate(FEATURES_FROM_MESH):
        m[i, list(vertices)] = 1.0 / len(vertices)
    return m


class MediapipeMeshDetector:
    """``detect(image)`` -> faces as 68 iBUG points, largest first.

    FaceMesh's own face finder only sees faces that fill a good part of the frame, so faces are first
    found with mediapipe's full-range face detector (faces down to about 5% of the frame width), and
    FaceMesh then runs on a square crop around each. ``max_faces`` caps how many faces are meshed;
    ``min_confidence`` is the face detector's score threshold.
    """

    name = "mediapipe"

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5):
        self.max_faces = max_faces
        with without_native_chatter():  # mediapipe's C++ start-up lines are not for users
            import mediapipe as mp  # heavy: only when a detector is made

            # full range (model 1) for small, distant faces; short range (model 0) as a second look for
            # faces that fill the frame
            self._finders = [mp.solutions.face_detection.FaceDetection(model_selection=m,
                                                                       min_detection_confidence=min_confidence)
                             for m in (1, 0)]
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=min_confidence)
            # The graphs start their models on first use: once here, inside the quiet window.
            blank = np.zeros((64, 64, 3), np.uint8)
            for graph in (*self._finders, self._mesh):
                graph.process(blank)
        self._meshed = False  # FaceMesh starts its landmark model (and says so) on the first face
        self._features = _mapping_matrix()

    def _find_faces(self, image: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(score, box x0 y0 x1 y1 pixels) of each face the face detectors see."""
        h, w = image.shape[:2]
        for finder in self._finders:
            found = finder.process(image).detections
            if found:
                faces = []
                for d in found:
                    b = d.location_data.relative_bounding_box
                    faces.append((float(d.score[0]), np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w,
                                                                (b.ymin + b.height) * h])))
                return faces
        return []

    def _mesh_in(self, image: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """The 468 mesh vertices (pixels) of the face in ``box``, meshed on a square crop twice the
        box's size (the detector's box is tight: brows to mouth), or None if FaceMesh sees no face."""
        h, w = image.shape[:2]
        centre = (box[:2] + box[2:]) / 2
        half = max(box[2] - box[0], box[3] - box[1])
        x0, y0 = np.floor(centre - half).astype(int)
        x1, y1 = np.ceil(centre + half).astype(int)
        crop = image[max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)]
        if crop.size == 0:
            return None
        # pad where the square leaves the image, so the face stays centred as FaceMesh expects
        crop = np.pad(crop, ((max(-y0, 0), max(y1 - h, 0)), (max(-x0, 0), max(x1 - w, 0)), (0, 0)))
        found = self._mesh.process(np.ascontiguousarray(crop)).multi_face_landmarks
        if not found:
            return None
        ch, cw = crop.shape[:2]
        # 468 mesh vertices, then (refined) the two irises: centre and four rim points each
        return np.array([(p.x * cw + x0, p.y * ch + y0) for p in found[0].landmark], np.float32)

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in a uint8 RGB (H, W, 3) image as pixel points (top-left origin), largest first.
        Every point of a face gets the face detector's score as its confidence."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"detect() needs a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}")
        image = np.ascontiguousarray(image)
        faces = []
        for score, box in sorted(self._find_faces(image), key=lambda f: -np.prod(f[1][2:] - f[1][:2])):
            if len(faces) == self.max_faces:
                break
            if self._meshed:
                mesh = self._mesh_in(image, box)
            else:
                with without_native_chatter():
                    mesh = self._mesh_in(image, box)
                self._meshed = mesh is not None
            if mesh is None:
                continue
            iris = _irises(mesh[468:], mesh) if len(mesh) >= 478 else None
            mesh = mesh[:468]
            points = np.concatenate([_jaw(mesh), self._features @ mesh])
            if iris is not None:  # in iBUG eye order: nearest the eye of points 36-41 first
                first = points[36:42].mean(0)
                if np.linalg.norm(iris[0, :2] - first) > np.linalg.norm(iris[1, :2] - first):
                    iris = iris[::-1].copy()
            x0, y0 = mesh.min(axis=0)
            x1, y1 = mesh.max(axis=0)
            faces.append(Detection(points=points, confidence=np.full(68, min(max(score, 0.0), 1.0), np.float32),
                                   box=(float(x0), float(y0), float(x1), float(y1)), iris=iris))
        return largest_first(faces)

    def close(self) -> None:
        for finder in self._finders:
            finder.close()
        self._mesh.close()
