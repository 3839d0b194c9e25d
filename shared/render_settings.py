"""Every render setting in one typed, documented place: ``RenderSettings``.

The same object travels the whole way: the CLI's ``render`` flags are generated from these fields, the
add-on's job inputs fill it, the wire carries ``to_dict()`` (plain JSON) in a SUBMIT's ``settings``, and
the backend turns what arrives into a ``RenderSettings`` with ``from_dict()`` once, at the door: every bad
field is named, all of them in one BadInput ("zip_level: 12 is not ...; fewshot.device: ...").

Adding a setting is adding one field: give it a default and ``setting(help=..., check=...)`` in the class
it belongs to (``RenderSettings`` for every engine, ``FewShotOptions``/``WarpOptions``/``BilayerOptions``
for one engine's options). ``check`` turns a wire/CLI value into the field's value or raises ValueError
with what is wrong; ``flag`` puts it on the ``render`` command line (the flag's default is the field's).

Old messages still decode (protocol 1): before this type the settings were one flat dict, engine options
beside the rest (``{"mode": ..., "checkpoint": ..., "finetune_steps": ...}``) and the engine in the
header; ``from_dict`` moves such flat engine keys into the part of the engine they belong to.
stdlib + numpy only (the add-on vendors this package).
"""
from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Callable

from .errors import BadInput

MODES = ("relative", "absolute")
# "pose" is the head's rigid motion; the others are the expression's (non-rigid) regions.
REGIONS = ("pose", "expression", "jaw", "brows", "eyes", "mouth")
DETECTORS = ("mediapipe", "fan")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MAX_EXPRESSION_SCALE = 10.0
MAX_SMOOTHING = 100.0
MAX_SHOTS = 32
MAX_FINETUNE_STEPS = 100_000
# Deflate level of the EXR tiles. 1 keeps 1080p streaming at 24 fps on two cores; level 4 files are
# about 18% smaller but cost half again as much CPU per frame.
DEFAULT_ZIP_LEVEL = 1


# --- value checks: value from JSON or the CLI -> the field's value, or ValueError saying what is wrong ---

def _r(value) -> str:
    """``repr(value)`` short enough for a message (a hostile value may be megabytes)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(lo: int, hi: int, optional: bool = False) -> Callable[[Any], Any]:
    def check(value):
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value \
                or not lo <= value <= hi:
            raise ValueError(f"{_r(value)} is not a whole number from {lo} to {hi}")
        return int(value)
    return check


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value):
        if value not in choices:
            raise ValueError(f"{_r(value)} is not one of {', '.join(choices)}")
        return value
    return check


def _flag_value(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{_r(value)} must be true or false")
    return value


def _path(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{_r(value)} is not a path; give the path of a file or folder on the backend machine")
    return value


def _engine(value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{_r(value)} is not an engine name (warp, fewshot, ...)")
    return value


def _neutral_frame(value) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not _finite(value) or int(value) != value or not -2**31 <= value < 2**31:
        raise ValueError(f"{_r(value)} is not a frame number; give an integer")
    return int(value)


def _finite(value) -> bool:
    """A JSON number that is a finite float (a 400-digit integer is not: float() overflows)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _expression_scale(value) -> float:
    if not _finite(value) or not 0.0 <= value <= MAX_EXPRESSION_SCALE:
        raise ValueError(f"{_r(value)} is out of range; give a number from 0 to {MAX_EXPRESSION_SCALE:g} "
                         "(1 = as performed)")
    return float(value)


def regions_from_text(text: str) -> tuple[str, ...]:
    """'pose, eyes,mouth' -> ('pose', 'eyes', 'mouth'): the command line's comma list."""
    return tuple(r.strip() for r in str(text).split(",") if r.strip())


def _zip_level(value) -> int:
    try:
        return _whole(1, 9)(value)
    except ValueError:
        raise ValueError(f"{_r(value)} is not a ZIP level; give a whole number from 1 (fastest) to 9 (smallest)") \
            from None


def _regions(value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = regions_from_text(value)
    if not isinstance(value, (list, tuple)) or not all(isinstance(r, str) for r in value):
        raise ValueError(f"{_r(value)} must be a list of region names ({', '.join(REGIONS)})")
    unknown = [r for r in value if r not in REGIONS]
    if unknown:
        raise ValueError(f"unknown region(s) {', '.join(map(repr, unknown))}; choose from {', '.join(REGIONS)}")
    if not value:
        raise ValueError(f"empty; name at least one of {', '.join(REGIONS)}")
    return tuple(dict.fromkeys(value))


def smoothing_strength(value) -> float | None:
    """A smoothing setting (the wire's, a flag's text) -> None (the driver as it came), 0.0 ('off') or a
    One-Euro strength (1 = default, up to 100). ValueError saying what is wrong."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() in ("off", "none"):
            return 0.0
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{_r(value)} is neither a strength number nor 'off'") from None
    if not _finite(value) or not 0 <= value <= MAX_SMOOTHING:
        raise ValueError(f"{_r(value)} is out of range; give a strength from 0 (off) to {MAX_SMOOTHING:g} "
                         "(1 = default) or 'off'")
    return float(value)


def _shot_landmarks(value) -> tuple:
    import numpy as np

    try:
        marks = [np.asarray(m, np.float64).reshape(68, 2) for m in (value or [])]
    except (ValueError, TypeError):
        raise ValueError("give one list of 68 (x, y) points per extra portrait") from None
    if not all(np.all(np.isfinite(m)) for m in marks):
        raise ValueError("the points must be finite numbers")
    return tuple(tuple((float(x), float(y)) for x, y in m) for m in marks)


def setting(default=MISSING, *, help: str, check: Callable[[Any], Any] | None = None, flag: str | bool = False,
            metavar: str | None = None, choices: tuple[str, ...] | None = None,
            cli_type: Callable[[str], Any] | None = None, cli_default: Any = MISSING, default_factory=MISSING):
    """A settings field. ``flag``: True for ``--field-name`` on ``render``'s command line, a string for
    another flag name, False for none. ``cli_type`` converts the flag's text (default: the type of the
    default); ``cli_default`` is the flag's default when it differs from the field's (engine options
    default to None on the command line: not given, so the engine's default)."""
    meta = {"help": help, "check": check, "flag": flag, "metavar": metavar, "choices": choices,
            "cli_type": cli_type, "cli_default": cli_default}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def flag_name(f) -> str:
    """The command-line flag of a settings field: its ``flag`` string or ``--field-name``."""
    flag = f.metadata.get("flag")
    return flag if isinstance(flag, str) else "--" + f.name.replace("_", "-")


def _checked(f, value, key: str, problems: list[str]):
    check = f.metadata.get("check")
    if check is None:
        return value
    try:
        return check(value)
    except ValueError as exc:
        problems.append(f"{key}: {exc}")
        return f.default if f.default is not MISSING else None


def _part_from_dict(part: type, data: dict, prefix: str, problems: list[str]):
    known = {f.name: f for f in fields(part)}
    for key in data:
        if key not in known:
            problems.append(f"{prefix}{str(key)[:60]}: not a {prefix[:-1]} option; known: {', '.join(known)}")
    values = {name: _checked(f, data[name], prefix + name, problems) for name, f in known.items() if name in data}
    return part(**values)


def _problems(obj, prefix: str) -> list[str]:
    """What is wrong with an already-built object's fields (direct construction, ``replace``)."""
    problems: list[str] = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        if f.name in ENGINE_PARTS and prefix == "":
            if not isinstance(value, ENGINE_PARTS[f.name]):
                problems.append(f"{f.name}: must be a {ENGINE_PARTS[f.name].__name__}")
            else:
                problems += _problems(value, f.name + ".")
            continue
        before = len(problems)
        normal = _checked(f, value, prefix + f.name, problems)
        if len(problems) == before:
            object.__setattr__(obj, f.name, normal)  # the normal form: ('pose',) for "pose", 2.0 for 2
    return problems


def _raise_problems(obj) -> None:
    problems = _problems(obj, "")
    if problems:
        raise BadInput("; ".join(problems))


@dataclass(frozen=True)
class WarpOptions:
    """Options of the ``warp`` engine (the classical landmark-driven warp)."""

    mouth_interior: bool = setting(True, check=_flag_value,
                                   help="warp engine: paint a mouth interior when the mouth opens")
    mouth_source: str = setting("auto", check=_choice(("auto", "synthesis")),
                                help="warp engine: where an opened mouth's interior comes from: auto (the "
                                     "actor's, when the performance was tracked from footage; else the "
                                     "portrait's own teeth or a synthesised one) or synthesis")
    gaze: bool = setting(True, check=_flag_value,
                         help="warp engine: move the irises with the performance's gaze (when it has one)")
    person_matte: bool = setting(True, check=_flag_value,
                                 help="warp engine: separate the person from the background (selfie "
                                      "segmentation) so the background never moves; off: the old "
                                      "window around the face")

    __post_init__ = _raise_problems


@dataclass(frozen=True)
class FewShotOptions:
    """Options of the ``fewshot`` engine (the paper's model). Model paths are ON THE BACKEND MACHINE;
    a relative one resolves against ``$LIVINGPORTRAIT_MODELS`` there."""

    checkpoint: str | None = setting(
        None, check=_path, flag=True, metavar="DIR", cli_default=None,
        help="fewshot engine: model checkpoint folder (or its model.safetensors) on the backend machine; "
             "bilayer engine: the converted weights folder; relative paths resolve against $LIVINGPORTRAIT_MODELS")
    finetune_steps: int = setting(
        0, check=_whole(0, MAX_FINETUNE_STEPS), flag=True, metavar="N", cli_default=None,
        help="fewshot engine: fine-tune on the portrait shots for N steps (default 0: embed only)")
    finetune_batch: int = setting(4, check=_whole(1, MAX_SHOTS), help="shots per fine-tuning step")
    shots: int | None = setting(None, check=_whole(1, MAX_SHOTS, optional=True),
                                help="portrait shots used (default: all, at most 32)")
    batch: int | None = setting(None, check=_whole(1, 256, optional=True),
                                help="frames per generator call (default 8 on a GPU, 1 on the CPU)")
    device: str = setting(
        "auto", check=_choice(DEVICES), flag=True, choices=DEVICES, cli_default=None,
        help="fewshot engine: where the model runs (default auto: a GPU if there is one)")
    compile: bool = setting(False, check=_flag_value, help="torch.compile the generator")
    precision: str = setting("auto", check=_choice(PRECISIONS),
                             help="auto: bf16 (fp16 where bf16 is missing) on GPUs, fp32 on the CPU")
    shot_landmarks: tuple = setting((), check=_shot_landmarks,
                                    help="68 (x, y) points of each portrait after the first, else detected")
    vgg19: str | None = setting(None, check=_path, help="VGG19 weights (safetensors) for fine-tuning's loss")
    vggface: str | None = setting(None, check=_path, help="VGGFace weights (safetensors) for fine-tuning's loss")

    __post_init__ = _raise_problems


@dataclass(frozen=True)
class BilayerOptions:
    """Options of the ``bilayer`` engine (the 2020 one-shot follow-up, converted public weights). The
    folder is ON THE BACKEND MACHINE; a relative one resolves against ``$LIVINGPORTRAIT_MODELS`` there."""

    checkpoint: str | None = setting(
        None, check=_path, flag=True, metavar="DIR", cli_default=None,
        help="bilayer engine: the converted weights folder (`convert-weights bilayer`; default "
             "$LIVINGPORTRAIT_MODELS/bilayer)")
    device: str = setting("auto", check=_choice(DEVICES), flag=True, choices=DEVICES, cli_default=None,
                          help="bilayer engine: where the model runs (default auto: a GPU if there is one)")
    precision: str = setting("auto", check=_choice(PRECISIONS),
                             help="bilayer engine: auto is fp16 on GPUs, fp32 on the CPU (bf16 is faster on "
                                  "CPUs with AVX-512 BF16, less exact)")
    batch: int | None = setting(None, check=_whole(1, 256, optional=True),
                                help="frames per network call (default 8)")

    __post_init__ = _raise_problems


# Engine name -> the field of RenderSettings holding its options (and that part's class).
ENGINE_PARTS: dict[str, type] = {"warp": WarpOptions, "fewshot": FewShotOptions, "bilayer": BilayerOptions}
# Settings that change how a file is stored, not what it shows (left out of the job digest).
STORAGE_SETTINGS = frozenset({"zip_level"})
_RETARGET_FIELDS = ("mode", "neutral_frame", "expression_scale", "regions")
_LOOK_HEAD = frozenset({"engine", "detector", *_RETARGET_FIELDS})  # always in look(), in its own place


@dataclass(frozen=True)
class RenderSettings:
    """How a performance is rendered onto a portrait. Every field has a working default.

    The retargeting fields (``mode``, ``neutral_frame``, ``expression_scale``, ``regions``) say how the
    driver's motion lands on the portrait (``backend/landmarks/retarget.py``); ``smoothing`` cleans up a
    hand-made driver; ``zip_level`` only changes file size; ``warp``/``fewshot``/``bilayer`` hold each
    engine's own options (only the chosen engine's are used).
    """

    engine: str = setting("warp", check=_engine, flag=True,
                          help="synthesis engine (default: warp)")
    detector: str = setting("mediapipe", check=_choice(DETECTORS), flag=True, choices=DETECTORS,
                            help="detector for the portrait's landmarks and a --driver video (default: mediapipe)")
    mode: str = setting("relative", check=_choice(MODES), flag=True, choices=MODES,
                        help="relative: transfer the driver's motion (default); absolute: its face shape too")
    neutral_frame: int | None = setting(None, check=_neutral_frame, flag=True, metavar="N", cli_type=int,
                                        help="driver frame whose face counts as neutral (default: the first)")
    expression_scale: float = setting(1.0, check=_expression_scale, flag=True, metavar="X",
                                      help="multiplies the expression motion (default 1)")
    regions: tuple[str, ...] = setting(
        ("pose", "expression"), check=_regions, flag=True, cli_type=regions_from_text, metavar="LIST",
        help="what transfers: comma list of pose, expression, eyes, brows, mouth, jaw (default pose,expression)")
    # `render --smoothing` is the tracking option for a --driver video (track's own); this one smooths
    # a performance as given, as the add-on does for clip tracks and rigs (and its farm export).
    smoothing: float | None = setting(None, check=smoothing_strength, flag="--driver-smoothing",
                                      metavar="STRENGTH|off",
                                      help="smooth the performance before retargeting, as the add-on does for "
                                           "clip tracks and rigs: a One-Euro strength (1 = default) or off "
                                           "(default: the performance as it is)")
    zip_level: int = setting(DEFAULT_ZIP_LEVEL, check=_zip_level, flag=True, metavar="N",
                             help="EXR ZIP (deflate) level 1-9: 1 is fastest (default), 9 smallest; level 4 "
                                  "files are about 18% smaller and take half again as long to write")
    warp: WarpOptions = setting(default_factory=WarpOptions, help="warp engine options")
    fewshot: FewShotOptions = setting(default_factory=FewShotOptions, help="fewshot engine options")
    bilayer: BilayerOptions = setting(default_factory=BilayerOptions, help="bilayer engine options")

    __post_init__ = _raise_problems

    @property
    def engine_options(self):
        """The chosen engine's options part (None for an engine without one)."""
        return getattr(self, self.engine) if self.engine in ENGINE_PARTS else None

    def to_dict(self) -> dict:
        """Plain JSON: what the wire carries (engine parts nested under their engine's name)."""
        return _jsonable(asdict(self))

    def look(self) -> list:
        """What decides the pictures, as JSON: engine, detector, the retargeting fields, and (only where
        they differ from their defaults) every other field and the chosen engine's options; not
        ``STORAGE_SETTINGS`` nor other engines' options. Equal ``look()`` -> identical frames: the resume
        digest hashes it. Its shape is the one the flat settings dict had, so files rendered before keep
        their digest. (A new field that only changes how files are stored joins ``STORAGE_SETTINGS``.)"""
        retarget = {k: _jsonable(getattr(self, k)) for k in _RETARGET_FIELDS}
        extra = {}
        for part in (self, self.engine_options):
            for f in fields(part) if part is not None else ():
                if part is self and (f.name in _LOOK_HEAD or f.name in ENGINE_PARTS or f.name in STORAGE_SETTINGS):
                    continue
                value = getattr(part, f.name)
                if value != (f.default_factory() if f.default is MISSING else f.default):
                    extra[f.name] = _jsonable(value)
        return [self.engine, self.detector, retarget, extra]

    @classmethod
    def from_dict(cls, data, engine: str | None = None) -> "RenderSettings":
        """Settings from the wire (or any JSON mapping); missing keys keep their defaults. ``engine``: the
        SUBMIT header's ``engine`` (old clients put it there only). Flat engine keys of old clients
        (``checkpoint``, ``finetune_steps``, ``device``, ...) go to the chosen engine's part. BadInput
        naming every bad field."""
        if not isinstance(data, dict):
            raise BadInput(f"settings: {type(data).__name__} given; settings must be a mapping of names to values")
        problems: list[str] = []
        data = dict(data)
        if engine is not None:
            if data.get("engine", engine) != engine:
                problems.append(f"engine: {data['engine']!r} in the settings but {engine!r} in the job")
            data["engine"] = engine
        chosen = data.get("engine", "warp")
        top = {f.name for f in fields(cls)}
        parts: dict[str, dict] = {}
        for name in ENGINE_PARTS:
            given = data.pop(name, None)
            if given is not None and not isinstance(given, dict):
                problems.append(f"{name}: {given!r} must be a mapping of {name} engine options")
                given = None
            parts[name] = dict(given or {})
        for key in [k for k in data if k not in top]:
            # An old flat key: the chosen engine's option if it has one of that name, else the first.
            owners = sorted((n for n, part in ENGINE_PARTS.items() if key in {f.name for f in fields(part)}),
                            key=lambda n: n != chosen)
            value = data.pop(key)
            if not owners:
                problems.append(f"{str(key)[:60]}: not a render setting; known: "
                                f"{', '.join(sorted(top - set(ENGINE_PARTS)))} and the engine parts "
                                f"{', '.join(ENGINE_PARTS)}")
            elif value is not None:
                parts[owners[0]].setdefault(key, value)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in ENGINE_PARTS:
                values[f.name] = _part_from_dict(ENGINE_PARTS[f.name], parts[f.name], f.name + ".", problems)
            elif f.name in data:
                values[f.name] = _checked(f, data[f.name], f.name, problems)
        if problems:
            raise BadInput("; ".join(problems))
        return cls(**values)

    @classmethod
    def cli_fields(cls):
        """(part name or None, field) of every setting that is a ``render`` flag, in declaration order.
        A flag two engines share (``--checkpoint``) fills the chosen engine's part."""
        for f in fields(cls):
            if f.name in ENGINE_PARTS:
                for g in fields(ENGINE_PARTS[f.name]):
                    if g.metadata.get("flag"):
                        yield f.name, g
            elif f.metadata.get("flag"):
                yield None, f


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
