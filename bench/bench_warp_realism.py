"""The warp engine's realism, measured by an INDEPENDENT detector (dlib), before and after.

    .venv/bin/python bench/bench_warp_realism.py [--before COMMIT] [--sheet docs/warp_realism.jpg]
                                                 [--speed-frames 48]

On four real portraits (a smiling photo, the same with glasses drawn on, a photo with glasses and a cap,
an oil-painting look; see tests/warp_subjects.py), with keyed performances (mouth open/close, a blink, gaze, a head shift + roll)
and one performance tracked from footage (the astronaut animated by the engine of ``--before``, written
as frames and tracked with ``track``'s code), it prints per portrait and engine:

  mouth r      Pearson r of dlib's inner-lip opening vs the driver's (keyed: the keyed amount; footage:
               dlib's opening on the footage itself)
  eye r        Pearson r of dlib's eye aspect ratio vs the keyed lid opening (1 - closure) over a blink
  blink gap    dlib's eye aspect ratio at full closure / at rest
  identity     largest dlib ResNet embedding distance from the untouched portrait (same person < 0.6)
  detail       Laplacian variance in the face box after a head move (shift 5.5, -3.3 px, roll 4 deg) /
               the input's
  collar       largest change (8-bit sRGB levels) below the neck while only the mouth opens
  background   largest change (8-bit levels) of pixels outside the person (selfie segmentation dilated
               by 0.7 eye distances, room for the hair to move) during a head move
  gaze r       Pearson r of the irises' measured sideways position (the darkest fifth of each eye
               opening) vs a keyed gaze sweep [engines that take a gaze]

``--before COMMIT``: the engine as it was at that commit (default: before the realism work), loaded
from git beside today's, both measured in this one process. Then 1080p synthesis speed of both,
interleaved, and the cost of each new part (the person layer, the mouth, a blink frame).
Absolute speeds depend on the machine's load; the ratios are what to compare.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))
import warp_subjects as ws  # noqa: E402

from livingportrait_backend.colorspace import linear_to_srgb8  # noqa: E402
from livingportrait_backend.detectors import get_detector  # noqa: E402
from livingportrait_backend.engines import create_engine  # noqa: E402
from livingportrait_backend.images import decode_portrait  # noqa: E402

BEFORE = "67db06e"  # the warp engine before the realism work (spline already on scipy)


def load_before(commit: str):
    """The WarpEngine class as it was at ``commit``, imported beside today's."""
    src = subprocess.run(["git", "show", f"{commit}:backend/engines/warp.py"], cwd=os.path.join(HERE, ".."),
                         check=True, capture_output=True, text=True).stdout
    src = src.replace("from ..exr import FramePatch", "from . import FramePatch")
    src = src.replace("settings.get(\"mouth_interior\", True)", "True")
    path = os.path.join(tempfile.mkdtemp(), "warp_before.py")
    with open(path, "w") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("livingportrait_backend.engines._warp_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.WarpEngine


def make(cls, portrait, points):
    e = cls()
    e.prepare([portrait], points, {} if cls.__module__.endswith("_warp_before") else None)
    return e


def frame(engine, portrait, targets) -> np.ndarray:
    return linear_to_srgb8(ws.compose(portrait.linear, engine.render(np.asarray(targets, np.float32))))


def laplacian_var(rgb, box):
    x0, y0, x1, y1 = box
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(cv2.Laplacian(g, cv2.CV_32F)[y0:y1, x0:x1].var())


def face_box(p, margin=0.0):
    lo, hi = p[:68].min(0), p[:68].max(0)
    m = margin * (hi - lo)
    return tuple(np.round(np.concatenate([lo + m, hi - m])).astype(int))


def corr(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def keyed_mouth(points, n=24):
    amount = 0.5 * (1 - np.cos(2 * np.pi * np.arange(n) / n))
    roll = 3 * np.sin(2 * np.pi * np.arange(n) / n + 0.7)
    return amount, [ws.head_move(ws.open_mouth(points, a), (2 * np.sin(i / 3), 0), r)
                    for i, (a, r) in enumerate(zip(amount, roll))]


def keyed_blink(points, n=13):
    closure = 1 - np.abs(np.linspace(-1, 1, n))
    return closure, [ws.blink(points, c) for c in closure]


def measure(engine, portrait, points, person, dlib, footage=None):
    """The table's row for one engine on one portrait."""
    row = {}
    rest = frame(engine, portrait, points)
    rest_lm = dlib.landmarks(rest)
    amount, targets = keyed_mouth(points)
    opening = []
    for t in targets:
        lm = dlib.landmarks(frame(engine, portrait, t))
        opening.append(np.nan if lm is None else ws.mouth_opening(lm))
    row["mouth r"] = corr(opening, amount)
    closure, targets = keyed_blink(points)
    ear = []
    for t in targets:
        lm = dlib.landmarks(frame(engine, portrait, t))
        ear.append(np.nan if lm is None else ws.eye_openness(lm))
    row["eye r"] = corr(ear, 1 - closure)
    row["blink gap"] = ear[len(ear) // 2] / ws.eye_openness(rest_lm) if rest_lm is not None else np.nan
    if footage is not None:
        row["footage mouth r"] = footage
    ref = dlib.embedding(portrait.srgb8)
    moved = ws.head_move(points, (5.5, -3.3), 4.0)
    dist = []
    for t in (ws.open_mouth(points, 0.6), moved, ws.blink(points, 1.0)):
        emb = dlib.embedding(frame(engine, portrait, t))
        dist.append(np.nan if emb is None or ref is None else float(np.linalg.norm(emb - ref)))
    row["identity"] = float(np.nanmax(dist)) if np.isfinite(dist).any() else np.nan
    out = frame(engine, portrait, moved)
    row["detail"] = laplacian_var(out, face_box(moved, 0.15)) / laplacian_var(portrait.srgb8, face_box(points, 0.15))
    # Collar: from 0.45 of the face height below the chin down 0.4 face heights, the face's width.
    fh = points[8, 1] - points[17:27, 1].min()
    x0, x1 = int(points[:17, 0].min()), int(points[:17, 0].max())
    y0, y1 = int(points[8, 1] + 0.45 * fh), int(points[8, 1] + 0.85 * fh)
    mouth_only = frame(engine, portrait, ws.open_mouth(points, 1.0))
    diff = np.abs(mouth_only.astype(int) - portrait.srgb8.astype(int)).max(-1)
    row["collar"] = int(diff[y0:y1, x0:x1].max()) if y1 > y0 else 0
    diff = np.abs(out.astype(int) - portrait.srgb8.astype(int)).max(-1)
    row["background"] = int(diff[~person].max())
    row["gaze r"] = gaze_r(engine, portrait, points)
    return row


def person_region(portrait, iod):
    """Pixels surely the person's (dilated selfie segmentation): the rest is background."""
    import mediapipe as mp
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as seg:
        m = seg.process(np.ascontiguousarray(portrait.srgb8)).segmentation_mask > 0.05
    k = max(3, int(0.7 * iod)) | 1  # wide enough for hair and a hat to move in (as the tests)
    return cv2.dilate(m.astype(np.uint8), np.ones((k, k), np.uint8)) > 0


def footage_performance(before_cls, dlib, tmp):
    """Footage of a talking astronaut (the before engine animating the photo with the built-in
    performance), written as PNG frames and tracked; and dlib's mouth opening on each frame."""
    from livingportrait_backend.landmarks.performance import builtin_performance
    from livingportrait_backend.landmarks.retarget import RetargetOptions, retarget
    from livingportrait_backend.landmarks.tracking import TrackOptions, track_video

    portrait = decode_portrait(ws.png_bytes(ws.astronaut()), "astronaut.png")
    points = get_detector("mediapipe").detect(portrait.srgb8)[0].points
    engine = make(before_cls, portrait, points)
    perf = builtin_performance(seconds=2.0)
    targets = retarget(points, perf, RetargetOptions())
    folder = os.path.join(tmp, "footage")
    os.makedirs(folder)
    opening = []
    for f, t in zip(perf.frames, targets):
        img = frame(engine, portrait, t)
        cv2.imwrite(os.path.join(folder, f"actor.{int(f):04d}.png"), img[:, :, ::-1])
        lm = dlib.landmarks(img)
        opening.append(np.nan if lm is None else ws.mouth_opening(lm))
    return track_video(folder, TrackOptions()), np.array(opening)


def footage_mouth_r(engine_cls, portrait, points, perf, driver_opening, dlib):
    """The renderer's own path (retargeting, and for today's engine the tracked gaze and the actor's
    mouth interiors), every other frame."""
    from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
    r = FrameRenderer(RenderSpec([portrait], perf, portrait_landmarks=points))
    r.prepare()
    r.engine = make(engine_cls, portrait, points)
    opening = []
    for f in sorted(r.targets)[::2]:
        img = linear_to_srgb8(ws.compose(portrait.linear, r._render_group([f])[0]))
        lm = dlib.landmarks(img)
        opening.append(np.nan if lm is None else ws.mouth_opening(lm))
    return corr(opening, driver_opening[::2])


def gaze_r(engine, portrait, points):
    """Pearson r of the measured iris movement (the darkest fifth of each eye's opening, its mean x)
    vs a keyed sideways gaze sweep; None for an engine without gaze."""
    if not getattr(engine, "uses_gaze", False):
        return float("nan")
    keyed = np.linspace(-0.2, 0.2, 9)
    got = []
    for g in keyed:
        gaze = np.array([[g, 0], [g, 0]], np.float32)
        img = ws.compose(portrait.linear, engine.render(points.astype(np.float32), gaze=gaze))
        xs_all = []
        for eye in (points[36:42], points[42:48]):
            m = np.zeros(img.shape[:2], np.uint8)
            cv2.fillPoly(m, [np.round(eye).astype(np.int32)], 1)
            ys, xs = np.nonzero(m)
            lum = img[ys, xs].mean(-1)
            xs_all.append(xs[lum <= np.percentile(lum, 20)].mean())
        got.append(np.mean(xs_all))
    return corr(got, keyed)


def contact_sheet(subjects, before_cls, path):
    """Rows: portraits. Columns: before / after, mouth open (zoomed), full blink (zoomed eyes),
    head move + open mouth (the face)."""
    tiles_h = 180
    rows = []
    det = get_detector("mediapipe")
    for name, rgb in subjects.items():
        portrait = decode_portrait(ws.png_bytes(rgb), name + ".png")
        points = det.detect(portrait.srgb8)[0].points
        iod = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
        engines = [make(before_cls, portrait, points), make(type(create_engine("warp")), portrait, points)]
        row = []
        for t, centre, half in ((ws.open_mouth(points, 1.0), points[48:68].mean(0) + [0, 0.15 * iod], (1.0, 0.6)),
                                (ws.blink(points, 1.0), points[36:48].mean(0), (1.1, 0.45)),
                                (ws.head_move(ws.open_mouth(points, 0.6), (6, -4), 6), points[27], (1.9, 2.1))):
            for e in engines:
                img = frame(e, portrait, t)
                x0, x1 = int(centre[0] - half[0] * iod), int(centre[0] + half[0] * iod)
                y0, y1 = int(centre[1] - half[1] * iod), int(centre[1] + half[1] * iod)
                crop = img[max(y0, 0):y1, max(x0, 0):x1]
                w = int(round(tiles_h * crop.shape[1] / crop.shape[0]))
                row.append(cv2.resize(crop, (w, tiles_h), interpolation=cv2.INTER_CUBIC))
                gap = 3 if e is engines[0] else 12  # a thin line within a before/after pair
                row.append(np.full((tiles_h, gap, 3), 255, np.uint8))
        rows.append(np.concatenate(row, 1))
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    sheet = np.concatenate(rows, 0)
    cv2.imwrite(path, sheet[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])


def speed(before_cls, frames):
    """1080p synthesis, before and after interleaved; and the cost of each new part."""
    sys.path.insert(0, HERE)
    import bench_warp
    from livingportrait_backend.frame_renderer import FrameRenderer, RenderSpec
    from livingportrait_backend.landmarks.performance import builtin_performance
    from livingportrait_wire.render_settings import RenderSettings, WarpOptions

    png = bench_warp.portrait_png((1920, 1080))
    r = FrameRenderer(RenderSpec([decode_portrait(png, "bench.png")], builtin_performance(seconds=frames / 24)))
    r.prepare()
    targets = [r.targets[f] for f in sorted(r.targets)]
    variants = {}
    for label, cls, settings in (
            ("before", before_cls, {}),
            ("after", WarpEngineNow, None),
            ("after, no person layer", WarpEngineNow, RenderSettings(warp=WarpOptions(person_matte=False))),
            ("after, no mouth interior", WarpEngineNow, RenderSettings(warp=WarpOptions(mouth_interior=False)))):
        e = cls()
        t = time.perf_counter()
        e.prepare(r.spec.portraits, r.portrait_points, settings)
        variants[label] = (e, time.perf_counter() - t, [])
    for _ in range(3):
        for e, _, rates in variants.values():
            t = time.perf_counter()
            for tg in targets:
                e.render(tg)
            rates.append(len(targets) / (time.perf_counter() - t))
    base = np.median(variants["before"][2])
    for label, (e, prep, rates) in variants.items():
        fps = float(np.median(rates))
        print(f"  1080p synthesis {label:26s} {fps:6.1f} frames/s ({fps / base:4.2f} x before; "
              f"{1000 / fps:5.1f} ms/frame), prepare {prep * 1000:5.0f} ms")
    blink = [ws.blink(r.portrait_points, 1.0).astype(np.float32)] * 12
    e = variants["after"][0]
    t = time.perf_counter()
    for tg in blink:
        e.render(tg)
    print(f"  1080p a full-blink frame (after): {(time.perf_counter() - t) / len(blink) * 1000:.1f} ms")
    # End to end into EXR files (the farm's own loop: synthesis on a worker thread overlapping the
    # encoder, files written atomically), before and after interleaved.
    from livingportrait_backend.farm import write_frames
    e2e = {"before": [], "after": []}
    frames = sorted(r.targets)
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(2):
            for label in e2e:
                r.engine = variants[label][0]
                t = time.perf_counter()
                write_frames(r, frames, tmp)
                e2e[label].append(len(frames) / (time.perf_counter() - t))
                for name in os.listdir(tmp):
                    os.remove(os.path.join(tmp, name))
    for label, rates in e2e.items():
        print(f"  1080p end to end EXR files {label:7s} {np.median(rates):6.1f} frames/s "
              f"({np.median(rates) / np.median(e2e['before']):4.2f} x before)")


WarpEngineNow = type(create_engine("warp"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default=BEFORE)
    p.add_argument("--sheet", default=None, help="write the before/after contact sheet here (JPEG)")
    p.add_argument("--speed-frames", type=int, default=48)
    p.add_argument("--no-footage", action="store_true")
    args = p.parse_args()
    before_cls = load_before(args.before)
    dlib = ws.measurer()
    subjects = ws.portraits()
    det = get_detector("mediapipe")
    with tempfile.TemporaryDirectory() as tmp:
        perf, driver_opening = (None, None) if args.no_footage else footage_performance(before_cls, dlib, tmp)
    cols = ["mouth r", "footage mouth r", "eye r", "blink gap", "identity", "detail", "collar", "background",
            "gaze r"]
    print(f"{'portrait':16s} {'engine':7s} " + " ".join(f"{c:>11s}" for c in cols))
    for name, rgb in subjects.items():
        portrait = decode_portrait(ws.png_bytes(rgb), name + ".png")
        points = det.detect(portrait.srgb8)[0].points
        iod = np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0))
        person = person_region(portrait, iod)
        for label, cls in (("before", before_cls), ("after", WarpEngineNow)):
            fr = None if perf is None else footage_mouth_r(cls, portrait, points, perf, driver_opening, dlib)
            row = measure(make(cls, portrait, points), portrait, points, person, dlib, fr)
            print(f"{name:16s} {label:7s} " + " ".join(f"{row.get(c, float('nan')):11.3f}" for c in cols))
    if args.sheet:
        contact_sheet(subjects, before_cls, args.sheet)
        print(f"contact sheet: {args.sheet}")
    speed(before_cls, args.speed_frames)


if __name__ == "__main__":
    main()
