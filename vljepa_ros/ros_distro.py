"""Which ROS 2 distribution this interpreter runs, without importing rclpy.

The bag code (ROS-free, `world/bag_io.py`) and the recorder pick their rosbags typestore by it, and the
Makefile runs this file to refuse installing one distribution's wheels into another's venv.

The installed rclpy says it best: the PyPI wheels and an apt install both register an `rclpy`
distribution whose major version belongs to one ROS 2 release. `ROS_DISTRO` (set by
`/opt/ros/<distro>/setup.bash`) is only the fallback: a shell can keep it from another install.

    python vljepa_ros/ros_distro.py       # prints the distribution, or nothing when no rclpy is installed
"""
from __future__ import annotations

import importlib.metadata
import os

# rclpy's major version in each release (github.com/ros2/rclpy branches): humble 3.3, jazzy 7.1, kilted 9.x.
DISTRO_OF_RCLPY_MAJOR = {3: "humble", 7: "jazzy", 9: "kilted"}
SUPPORTED_BY_PIP_ROUTE = ("kilted", "jazzy")


def distro_of_rclpy_version(version: str) -> str | None:
    """'7.1.5' -> 'jazzy'; None for a major version no release listed above has."""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return None
    return DISTRO_OF_RCLPY_MAJOR.get(major)


def installed_ros_distro() -> str | None:
    """The distribution of the installed rclpy, else $ROS_DISTRO, else None (no ROS 2 here)."""
    try:
        distro = distro_of_rclpy_version(importlib.metadata.version("rclpy"))
    except importlib.metadata.PackageNotFoundError:
        distro = None
    return distro or os.environ.get("ROS_DISTRO") or None


if __name__ == "__main__":
    print(installed_ros_distro() or "")
