"""Maps the design card's folders to distinctive import names.

backend/ installs as ``livingportrait_backend`` and shared/ as ``livingportrait_wire``, so nothing
generic (``shared``, ``backend``) lands in site-packages. Subpackages are found automatically.
"""
from setuptools import find_packages, setup

FOLDERS = {"livingportrait_backend": "backend", "livingportrait_wire": "shared"}

packages, package_dir = [], {}
for name, folder in FOLDERS.items():
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

setup(packages=packages, package_dir=package_dir)
