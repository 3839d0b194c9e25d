"""The landmark path: retargeting a performance onto a portrait, temporal clean-up, tracking clips,
and the landmark raster the neural model sees.

Public doors: ``retarget`` / ``RetargetOptions`` (here), ``smoothing.smooth_sequence``,
``raster.draw_landmarks``, ``tracking.track_frames`` / ``track_video`` / ``load_driver``.
"""
from .retarget import REGIONS, RetargetOptions, retarget
