"""The wire between Living Portrait's add-on and backend: stdlib + numpy only.

Vendored into the Blender extension, so nothing here imports torch, cv2 or bpy, and zmq is imported
only inside connection.py when a connection is made.
"""
from .errors import (BackendUnavailable, BadInput, Cancelled, JobFailed, LivingPortraitError,
                     ProtocolError)
from .landmarks import LandmarkSequence, load_sequence, save_sequence
from .layout import LAYOUT_NAME, NUM_POINTS, PARTS, STABLE_POINTS
from .naming import check_name, format_frames, frame_filename, frame_spans, parse_frame_range, parse_frames
