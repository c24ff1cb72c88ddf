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

# The rosbag2 metadata version the package's bags declare. rosbag2's reader (rosbag2_storage/yaml.hpp) has
# no upper bound and decodes each field from the version that introduced it: Humble (0.15) reads 8 (it takes
# `offered_qos_profiles` as a string, which version 9 turned into a list), Jazzy (0.26) and Kilted read 8 and
# 9. So 8, whose fields (type_description_hash, ros_distro, custom_data) rosbags writes, opens in all three.
BAG_METADATA_VERSION = 8
# Without any ROS 2 installed (a ROS-free run), bags are typed as the pip route's default distribution's.
DEFAULT_DISTRO = "kilted"

# The environment variable that names a Fast DDS XML profile file: Fast DDS 3 (Kilted) reads only the first,
# Fast DDS 2.14 (Jazzy's; Humble's 2.6 too) only the second (their libraries hold no other). Where both are
# set, Kilted's rmw loads the file twice (an XMLPARSER error for the duplicate profile, and a deprecation
# warning): set the one the running distribution reads (fastdds_profile_variable), for a camera, both.
FASTDDS_PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")


def fastdds_profile_variable(distro: str | None = None) -> str:
    """The profile variable the Fast DDS of `distro` (default: the installed one) reads."""
    distro = distro or installed_ros_distro() or DEFAULT_DISTRO
    return FASTDDS_PROFILE_VARIABLES[1] if distro in ("humble", "jazzy") else FASTDDS_PROFILE_VARIABLES[0]

# rclpy's major version in each release (github.com/ros2/rclpy branches): humble 3.3, jazzy 7.1, kilted 9.x.
DISTRO_OF_RCLPY_MAJOR = {3: "humble", 7: "jazzy", 9: "kilted"}


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


# The ROS 2 releases rosbags 0.11 has a typestore for (rosbags.typesys.Stores).
ROSBAGS_DISTROS = ("foxy", "galactic", "humble", "iron", "jazzy", "kilted", "lyrical")


def rosbags_store_name(distro: str | None = None) -> str:
    """rosbags' typestore for `distro` (default: the installed one), e.g. 'ros2_jazzy': the message
    definitions (and so the type hashes) bags are written and read with; `rosbags.typesys.Stores(name)`.
    A release rosbags does not know (rolling, a newer one) gets its newest definitions, 'latest'."""
    distro = distro or installed_ros_distro() or DEFAULT_DISTRO
    return f"ros2_{distro}" if distro in ROSBAGS_DISTROS else "latest"


if __name__ == "__main__":
    print(installed_ros_distro() or "")
