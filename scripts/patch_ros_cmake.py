"""Point the ROS 2 wheels' exported CMake files at this interpreter's include directories.

The kilted wheels were built in a manylinux container, and about a dozen
`share/*/cmake/*.cmake` files still name that container's Python and numpy include
directories. rosidl's Python generator reads them when it builds our interfaces, so we
rewrite them to the current venv's. Idempotent; run again after installing more ros-* wheels.
"""
from __future__ import annotations

import pathlib
import re
import sys
import sysconfig

import numpy

PYTHON_INCLUDE = re.compile(r"[^;\"\s]*/include/python3\.\d+")
NUMPY_INCLUDE = re.compile(r"[^;\"\s]*/site-packages/numpy/(?:_core|core)/include")


def patch(prefix: pathlib.Path) -> list[pathlib.Path]:
    python_include = sysconfig.get_paths()["include"]
    numpy_include = numpy.get_include()
    changed = []
    for path in sorted(prefix.glob("share/*/cmake/*.cmake")):
        text = path.read_text()
        patched = NUMPY_INCLUDE.sub(numpy_include, PYTHON_INCLUDE.sub(python_include, text))
        if patched != text:
            path.write_text(patched)
            changed.append(path)
    return changed


if __name__ == "__main__":
    prefix = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else sys.prefix)
    changed = patch(prefix)
    print(f"patched {len(changed)} CMake file(s) under {prefix}/share")
