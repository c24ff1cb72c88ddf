"""VL-JEPA semantic perception for ROS 2.

ROS-free core: `model` (the network), `runtime` (inference engines), `stream` (algorithms on
frame and embedding streams), `world` (synthetic robot worlds). ROS shells: `nodes`.
"""
# CMake installs the generated interfaces (vljepa_ros.msg, vljepa_ros.srv) into the environment's
# site-packages/vljepa_ros. When this source tree is imported first (tests, development), merge
# that directory into the package so both halves import as one.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

__version__ = "0.1.0"
