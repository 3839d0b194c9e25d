"""The landmark raster: the paper's palette and groups, closed and open outlines, anti-aliased, at
any resolution."""
import numpy as np
import pytest

from livingportrait_backend.landmarks.raster import draw_landmarks

WHITE, RED, GREEN, BLUE = (1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1)
MAGENTA, CYAN, YELLOW = (1, 0, 1), (0, 1, 1), (1, 1, 0)

# (indices, closed, colour) exactly as REFERENCE.md states the drawing
GROUPS = [
    (range(0, 17), False, WHITE), (range(17, 22), False, RED), (range(22, 27), False, GREEN),
    (range(27, 31), False, BLUE), (range(31, 36), False, BLUE), (range(36, 42), True, MAGENTA),
    (range(42, 48), True, CYAN), (range(48, 60), True, YELLOW), (range(60, 68), True, YELLOW),
]


def spread_face(size=300):
    """68 points with every group on its own arc (a U opening upwards) in its own cell of a 3x3 grid,
    so no two strokes touch and the open/closed chords are far from the arcs."""
    pts = np.zeros((68, 2))
    cell = size / 3
    for g, (indices, _, _) in enumerate(GROUPS):
        if g == 4:  # the nostrils: a U under the bridge's cell with 33 at its bottom
            row, col = 2, 2
        else:
            row, col = divmod(g if g < 4 else g - 1, 3)
        n = len(indices)
        angles = np.linspace(np.pi * 0.05, np.pi * 0.95, n)
        cx, cy, r = (col + 0.5) * cell, (row + 0.35) * cell, cell * 0.38
        pts[list(indices)] = np.stack([cx - r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
    # the nose bridge runs straight down its cell
    col, row = 0, 1
    pts[27:31] = [((col + 0.5) * cell, (row + 0.1 + 0.15 * k) * cell) for k in range(4)]
    return pts


def colour_at(raster, point):
    x, y = np.round(point).astype(int)
    return raster[y, x]


def assert_colour(pixel, colour):
    assert pixel.max() > 0.5, pixel
    np.testing.assert_allclose(pixel / pixel.max(), colour, atol=0.15)


@pytest.fixture(scope="module")
def face():
    return spread_face()


@pytest.fixture(scope="module")
def raster(face):
    return draw_landmarks(face, (300, 300))


def test_raster_is_float_rgb_on_black(raster):
    assert raster.shape == (300, 300, 3) and raster.dtype == np.float32
    assert raster.min() == 0.0 and raster.max() == pytest.approx(1.0)
    assert (raster.max(axis=2) == 0).mean() > 0.8  # mostly black background


@pytest.mark.parametrize("group", range(len(GROUPS)))
def test_each_group_is_drawn_in_its_colour(face, raster, group):
    indices, closed, colour = GROUPS[group]
    indices = list(indices)
    for a, b in zip(indices, indices[1:]):
        assert_colour(colour_at(raster, (face[a] + face[b]) / 2), colour)
    if group == 3:
        return  # the bridge is a straight line: its chord lies on it
    chord_mid = colour_at(raster, (face[indices[0]] + face[indices[-1]]) / 2)
    if closed:
        assert_colour(chord_mid, colour)
    else:
        assert chord_mid.max() == 0.0


def test_nose_bridge_continues_to_the_point_under_the_tip(face, raster):
    for t in (0.3, 0.5, 0.7):
        assert_colour(colour_at(raster, face[30] * (1 - t) + face[33] * t), BLUE)


def test_lines_are_anti_aliased_and_as_thick_as_asked(face):
    thin = draw_landmarks(face, 300, thickness=1)
    thick = draw_landmarks(face, 300, thickness=4)
    values = np.unique(thin)
    assert ((values > 0.05) & (values < 0.95)).sum() > 10  # soft edge levels, not just on/off
    assert (thick.max(axis=2) > 0.5).sum() > 2.5 * (thin.max(axis=2) > 0.5).sum()


@pytest.mark.parametrize("size", [(64, 64), (256, 256), (1024, 576)])
def test_any_resolution(face, size):
    w, h = size
    scaled = face * [w / 300, h / 300]
    raster = draw_landmarks(scaled, size)
    assert raster.shape == (h, w, 3)
    # the same picture at every size: the eyes' magenta sits at the same relative place
    for a, b in zip(range(36, 41), range(37, 42)):
        x, y = (scaled[a] + scaled[b]) / 2
        pixel = raster[int(round(y)), int(round(x))]
        assert pixel[0] > 0.3 and pixel[2] > 0.3 and pixel[1] < 0.1


def test_sub_pixel_positions_move_the_line(face):
    a = draw_landmarks(face, 300)
    b = draw_landmarks(face + [0.25, 0.0], 300)
    assert np.abs(a - b).max() > 0.05  # a quarter-pixel shift changes the anti-aliased edges
