"""Build the Living Portrait Blender extension: one installable zip per platform.

    python build_addon.py                       # all platforms -> dist/living_portrait-VERSION-PLATFORM.zip
    python build_addon.py --platform linux-x64  # one platform
    python build_addon.py --stage DIR           # only lay out the extension tree (no wheels, no zip)

Each zip holds the extension package (``addon/``), our wire package (``shared/``) vendored as the
subpackage ``wire`` (the add-on imports it as ``from . import wire``), and the cp311 pyzmq wheel for the
zip's platform, fetched by ``pip download`` at build time and cached under ``build/wheels/``. The
manifest in the zip names only that platform and that wheel. numpy is already inside Blender.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
ADDON_DIR = ROOT / "addon"
WIRE_DIR = ROOT / "shared"
WIRE_SUBPACKAGE = "wire"
MANIFEST = "blender_manifest.toml"
FARM_TEMPLATE = ROOT / "farm" / "openjd" / "living_portrait" / "template.yaml"

# The pyzmq the add-on bundles; Blender 4.2-5.0 run Python 3.11, so the wheels are cp311.
PYZMQ_VERSION = "27.1.0"
# Blender platform name -> the pip --platform tag whose wheels Blender accepts for it.
PLATFORMS = {
    "linux-x64": "manylinux_2_28_x86_64",
    "macos-arm64": "macosx_11_0_arm64",
    "windows-x64": "win_amd64",
}
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.tmp")


def read_manifest() -> dict:
    """The source manifest, parsed (raises if it is not valid TOML)."""
    with open(ADDON_DIR / MANIFEST, "rb") as f:
        return tomllib.load(f)


def stage(dest: Path) -> Path:
    """Lay out the extension package at ``dest/living_portrait`` and return that folder.

    The layout is the zip's, minus wheels: tests import the bpy-free modules from it, so they test
    exactly what ships (including ``from . import wire``).
    """
    package = Path(dest) / read_manifest()["id"]
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(ADDON_DIR, package, ignore=_SKIP)
    shutil.copytree(WIRE_DIR, package / WIRE_SUBPACKAGE, ignore=_SKIP)
    # Export Farm Job writes the project's OpenJD template into the bundles it makes.
    shutil.copyfile(FARM_TEMPLATE, package / "farm_job_template.yaml")
    return package


def fetch_wheel(platform: str, cache: Path) -> Path:
    """The cp311 pyzmq wheel for a Blender platform, downloaded once into ``cache/PLATFORM``."""
    folder = cache / platform
    found = sorted(folder.glob(f"pyzmq-{PYZMQ_VERSION}-*.whl")) if folder.exists() else []
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311",
               "--platform", PLATFORMS[platform], "--dest", str(folder), f"pyzmq=={PYZMQ_VERSION}"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(folder.glob(f"pyzmq-{PYZMQ_VERSION}-*.whl"))
        if result.returncode != 0 or not found:
            raise SystemExit(f"build_addon: could not download the pyzmq {PYZMQ_VERSION} wheel for "
                             f"{platform} ({PLATFORMS[platform]}); pip said:\n{result.stderr.strip()}\n"
                             "Check the network or put the wheel in " + str(folder))
    return found[-1]


def platform_manifest(text: str, platform: str, wheel_name: str) -> str:
    """The source manifest narrowed to one platform, with its wheel listed."""
    text, n = re.subn(r"(?m)^platforms\s*=.*$", f'platforms = ["{platform}"]\nwheels = ["./wheels/{wheel_name}"]',
                      text)
    if n != 1:
        raise SystemExit(f"build_addon: addon/{MANIFEST} must have exactly one `platforms = [...]` line")
    tomllib.loads(text)  # the result must still be valid TOML
    return text


def build(platform: str, out_dir: Path, cache: Path) -> Path:
    """Write ``out_dir/living_portrait-VERSION-PLATFORM.zip`` and return its path."""
    manifest = read_manifest()
    wheel = fetch_wheel(platform, cache)
    staging = ROOT / "build" / "stage" / platform
    package = stage(staging)
    (package / MANIFEST).write_text(platform_manifest((ADDON_DIR / MANIFEST).read_text(), platform, wheel.name))
    (package / "wheels").mkdir()
    shutil.copy2(wheel, package / "wheels" / wheel.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{manifest['version']}-{platform.replace('-', '_')}.zip"
    tmp = target.with_suffix(".zip.tmp")
    # Files sit at the zip's top level, as `blender --command extension build` lays them out.
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(package).as_posix())
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", choices=sorted(PLATFORMS), action="append",
                        help="build only this platform (repeatable); default: all")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="folder for the zips (default dist/)")
    parser.add_argument("--wheel-cache", type=Path, default=ROOT / "build" / "wheels",
                        help="where downloaded wheels are kept between builds")
    parser.add_argument("--stage", type=Path, metavar="DIR",
                        help="only lay out the extension package under DIR (for development and tests)")
    args = parser.parse_args(argv)
    if args.stage:
        print(stage(args.stage))
        return 0
    for platform in args.platform or sorted(PLATFORMS):
        print(build(platform, args.out, args.wheel_cache))
    return 0


if __name__ == "__main__":
    sys.exit(main())
