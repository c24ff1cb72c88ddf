"""pip route for vljepa_ros (the colcon route builds CMakeLists.txt, which installs the same package).

The generated interfaces (vljepa_ros.msg / vljepa_ros.srv) come from CMake; `make env` builds them
into the virtual environment before installing this package.
"""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "vljepa_ros"

# Keep in step with VLJEPA_ROS_EXECUTABLES in CMakeLists.txt (test/test_package.py checks it).
# Each also has a wrapper in ros_executables/, installed to <prefix>/lib/vljepa_ros where `ros2 run`
# and `ros2 launch` look for executables (as colcon installs them); it execs the console script.
CONSOLE_SCRIPTS = [
    "perception_node=vljepa_ros.nodes.perception:main",
    "monitor_node=vljepa_ros.nodes.monitor:main",
    "action_inference_node=vljepa_ros.nodes.action_inference:main",
    "bringup=vljepa_ros.nodes.bringup:main",
    "vljepa-ros=vljepa_ros.cli:main",
]



def tree(directory: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing `directory` with its sub-directories under share/<package>."""
    return [(f"share/{PACKAGE}/{root}", [os.path.join(root, name) for name in files])
            for root, _, files in os.walk(directory) if files and "training_state" not in root]


setup(
    name=PACKAGE,
    version="0.1.0",
    description="VL-JEPA semantic perception for ROS 2",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"lib/{PACKAGE}", sorted(glob("ros_executables/*"))),  # for ros2 run / ros2 launch
        (f"share/{PACKAGE}/launch", glob("launch/*")),
        (f"share/{PACKAGE}/config", sorted(glob("config/*.yaml") + glob("config/*.xml"))),
        *tree("models/small"),
        *tree("data/demo_tabletop"),
    ],
    zip_safe=False,
    entry_points={"console_scripts": CONSOLE_SCRIPTS},
)
