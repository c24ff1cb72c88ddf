"""The launch file cannot run here (`launch` is not on PyPI), so this test parses it and checks each
node executable, parameter file and parameter against the package, as `ros2 launch` would."""
from __future__ import annotations

import importlib
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest
import yaml

from test_package import setup_py_console_scripts

ROOT = Path(__file__).resolve().parent.parent
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.xml"))
NODE_MODULES = {
    "perception_node": "vljepa_ros.nodes.perception",
    "monitor_node": "vljepa_ros.nodes.monitor",
    "action_inference_node": "vljepa_ros.nodes.action_inference",
}


def yaml_parameters_for(config: dict, node_name: str) -> dict:
    """Parameters a node named `node_name` gets from a params file (ROS wildcard keys included)."""
    merged: dict = {}
    for key, section in config.items():
        pattern = "^" + re.escape(key).replace(r"/\*\*", "(/.*)?").replace(r"\*", "[^/]*") + "$"
        if re.match(pattern, f"/vljepa/{node_name}") or key == node_name:
            merged.update(section["ros__parameters"])
    return merged


def resolve(text: str, arguments: dict[str, str]) -> str:
    text = re.sub(r"\$\(var (\w+)\)", lambda m: arguments[m.group(1)], text)
    return text.replace("$(find-pkg-share vljepa_ros)", str(ROOT))


@pytest.mark.parametrize("launch_file", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_matches_the_package(launch_file):
    root = ElementTree.parse(launch_file).getroot()
    arguments = {arg.get("name"): arg.get("default") for arg in root.iter("arg")}
    executables = {entry.split("=")[0] for entry in setup_py_console_scripts()}
    nodes = list(root.iter("node"))
    assert {node.get("exec") for node in nodes} == set(NODE_MODULES), "launch must start the three nodes"
    for node in nodes:
        assert node.get("pkg") == "vljepa_ros"
        assert node.get("exec") in executables, f"{node.get('exec')} is not a console script"
        module = importlib.import_module(NODE_MODULES[node.get("exec")])
        source = Path(module.__file__).read_text()
        for remap in node.iter("remap"):
            assert f'"{remap.get("from")}"' in source, f"{node.get('exec')} has no topic {remap.get('from')}"
        params_files = [resolve(param.get("from"), arguments) for param in node.iter("param") if param.get("from")]
        assert params_files, f"{node.get('exec')} gets no parameter file"
        for params_file in params_files:
            assert Path(params_file).is_file(), params_file
            check_parameters(node.get("name"), module, yaml.safe_load(Path(params_file).read_text()))


def check_parameters(node_name: str, module, config: dict) -> None:
    specs = {spec.name: spec for spec in module.PARAMETERS}
    values = yaml_parameters_for(config, node_name)
    assert values, f"the config has no parameters for {node_name}"
    for name, value in values.items():
        assert name in specs, f"{node_name}: parameter {name!r} in the config is not declared by the node"
        spec = specs[name]
        assert type(value) is type(spec.default), f"{node_name}.{name}: {value!r} is not a {type(spec.default).__name__}"
        if spec.choices:
            assert value in spec.choices, f"{node_name}.{name}={value!r} not in {spec.choices}"
        if spec.min_value is not None:
            assert value >= spec.min_value, f"{node_name}.{name}={value!r} below {spec.min_value}"
        if spec.max_value is not None:
            assert value <= spec.max_value, f"{node_name}.{name}={value!r} above {spec.max_value}"


def test_config_and_launch_are_installed_by_both_routes():
    setup_text = (ROOT / "setup.py").read_text()
    cmake_text = (ROOT / "CMakeLists.txt").read_text()
    assert 'glob("launch/*")' in setup_text and 'glob("config/*.yaml")' in setup_text
    assert re.search(r"install\(DIRECTORY launch config", cmake_text)
