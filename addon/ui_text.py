"""Messages for artists: the backend and the wire speak to command-line users too ("pass
--portrait-landmarks FILE", "start it with `livingportrait serve`"); ``for_artist`` says the same in the
add-on's own words (its buttons and settings), so no report names a flag, a shell command or an
environment variable. Blender-free.
"""
import re

# The command line's words -> the panel's. Longest first, so "--detector fan" wins over "--detector".
_PHRASES = (
    ("try --detector fan or another --face-index", "try the FAN detector or another Face number"),
    ("pass --portrait-landmarks FILE", "give its landmarks by hand: Create Landmark Rig on a portrait "
                                       "whose face is found, or choose a clearer image"),
    ("--detector fan", "the FAN detector"),
    ("--detector mediapipe", "the MediaPipe detector"),
    ("--portrait-landmarks", "the portrait's landmarks"),
    ("--face-index", "the Face number"),
    ("--detector", "the Detector setting"),
    ("--checkpoint", "the Checkpoint setting"),
    ("--smoothing", "the Smoothing setting"),
    ("--fan-weights", "the backend's FAN weights folder"),
    ("--fan-download", "a FAN weights download on the backend's machine"),
    ("--driver", "the performance"),
    ("`livingportrait serve`", "Start Local Backend (or the backend command on its machine)"),
    ("livingportrait serve", "Start Local Backend (or the backend command on its machine)"),
    ("`livingportrait train`", "the trainer"),
    ("$LIVINGPORTRAIT_MODELS", "the backend's models folder"),
)
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)")
_ENV = re.compile(r"\$LIVINGPORTRAIT_[A-Z_]+")


def for_artist(message: str) -> str:
    """``message`` with command-line flags, commands and environment variables put as the add-on says
    them; anything left that looks like a flag becomes "the Name setting"."""
    for cli, ui in _PHRASES:
        message = message.replace(cli, ui)
    message = _FLAG.sub(lambda m: f"the {m.group(1).replace('-', ' ').title()} setting", message)
    return _ENV.sub("the backend's settings", message)
