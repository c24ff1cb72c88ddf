"""The package is complete as a ROS 2 package: entry points, install rules, a ROS-free core."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_PACKAGES = ("model", "runtime", "stream", "world", "evaluation")


def setup_py_console_scripts() -> list[str]:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "CONSOLE_SCRIPTS":
            return [ast.literal_eval(element) for element in node.value.elts]
    raise AssertionError("setup.py defines no CONSOLE_SCRIPTS")


def cmake_executables() -> list[str]:
    text = (ROOT / "CMakeLists.txt").read_text()
    block = re.search(r"set\(VLJEPA_ROS_EXECUTABLES(.*?)\)", text, re.S).group(1)
    return re.findall(r'"([^"]+)"', block)


def test_colcon_executables_mirror_pip_console_scripts():
    assert setup_py_console_scripts() == cmake_executables()


def test_every_entry_point_resolves_to_a_callable():
    import importlib
    for entry in setup_py_console_scripts():
        name, target = entry.split("=")
        module_name, function = target.split(":")
        assert callable(getattr(importlib.import_module(module_name), function)), entry


def test_package_xml_declares_build_type_and_dependencies():
    root = ElementTree.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "vljepa_ros"
    assert root.find("export/build_type").text == "ament_cmake"
    declared = {element.text for element in root if element.tag.endswith("depend")}
    imported_ros_packages = {"rclpy", "std_msgs", "sensor_msgs", "builtin_interfaces", "diagnostic_msgs",
                             "rosidl_default_generators", "rosidl_default_runtime", "ament_cmake_python"}
    assert imported_ros_packages <= declared, imported_ros_packages - declared
    group = root.find("member_of_group")
    assert group is not None and group.text == "rosidl_interface_packages"


def test_interfaces_listed_in_cmake_exist():
    text = (ROOT / "CMakeLists.txt").read_text()
    listed = re.findall(r'"((?:msg|srv)/\w+\.(?:msg|srv))"', text)
    on_disk = sorted(str(p.relative_to(ROOT)) for p in [*ROOT.glob("msg/*.msg"), *ROOT.glob("srv/*.srv")])
    assert sorted(listed) == on_disk


def test_generated_interfaces_import():
    from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent  # noqa: F401
    from vljepa_ros.srv import RankActions  # noqa: F401


def test_core_imports_without_rclpy():
    """model/runtime/stream/world/evaluation must work on a machine without ROS."""
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in CORE_PACKAGES if (ROOT / "vljepa_ros" / package).is_dir()
        for path in (ROOT / "vljepa_ros" / package).rglob("*.py")
        if "metaworld" not in path.name)  # the Meta-World renderer runs in its own environment
    assert modules, "no core modules found"
    script = (
        "import sys\n"
        "class BlockRos:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('rclpy', 'rosidl_runtime_py') or name.startswith(('vljepa_ros.msg', 'vljepa_ros.srv', 'vljepa_ros.nodes')):\n"
        "            raise ImportError('ROS import in the core: ' + name)\n"
        "sys.meta_path.insert(0, BlockRos())\n"
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def test_node_help_lists_every_parameter():
    import importlib
    for module_name in ("perception", "monitor", "action_inference"):
        module = importlib.import_module(f"vljepa_ros.nodes.{module_name}")
        result = subprocess.run([sys.executable, "-m", f"vljepa_ros.nodes.{module_name}", "--help"],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        for spec in module.PARAMETERS:
            assert f"  {spec.name} (default" in result.stdout, (module_name, spec.name)
