"""The landmark path: retargeting a performance onto a portrait, temporal clean-up, tracking clips,
the landmark raster the neural model sees, and the demo's built-in performance.

Public doors: ``retarget`` / ``RetargetOptions`` (here), ``smoothing.smooth_sequence``,
``raster.draw_landmarks``, ``tracking.track_frames`` / ``track_video`` / ``load_driver``,
``performance.builtin_performance``.
"""
from .retarget import REGIONS, RetargetOptions, retarget
