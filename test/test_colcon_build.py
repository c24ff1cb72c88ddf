"""The colcon route: `colcon build` of this package as a ROS 2 workspace runs it, then the install tree
as a user meets it after `source install/local_setup.sh`.

The underlay is this venv's ROS 2 wheels (Jazzy or Kilted) (a normal ament prefix: AMENT_PREFIX_PATH and
CMAKE_PREFIX_PATH point at it) instead of /opt/ros/<distro>. Checked: the build (interfaces, Python
package, node executables, share files), that our vljepa_ros/__init__.py wins over rosidl's empty one,
that the interfaces import and (de)serialize from the install tree, and that the installed
`perception_node` executable runs as a node and publishes embeddings.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from test_package import setup_py_console_scripts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "vljepa_ros"
BUILD_TIMEOUT_S = 600

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def colcon_environment(home: Path) -> dict[str, str]:
    prefix = sys.prefix  # the venv: ROS 2 wheels laid out as an ament install prefix
    environment = dict(os.environ,
                       PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                       AMENT_PREFIX_PATH=prefix, CMAKE_PREFIX_PATH=prefix, COLCON_HOME=str(home))
    environment.pop("PYTHONPATH", None)  # no source tree on the path: everything must come from install/
    return environment


# What CMakeLists.txt reads. Copied into src/ of a temp workspace: built in place, the venv inside this
# checkout would lie under the source directory, which CMake refuses for exported include paths.
SOURCES = ("CMakeLists.txt", "package.xml", "cmake", "msg", "srv", PACKAGE, "launch", "config", "models",
           "data/demo_tabletop")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """colcon build of a workspace holding this package in src/, into a temp dir."""
    ws = tmp_path_factory.mktemp("colcon_ws")
    source = ws / "src" / PACKAGE
    for relative in SOURCES:
        if (ROOT / relative).is_dir():
            shutil.copytree(ROOT / relative, source / relative,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "training_state"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / relative, source / relative)
    colcon = Path(sys.executable).parent / "colcon"
    assert colcon.is_file(), "colcon is missing from the venv: `make env` installs colcon-common-extensions"
    command = [str(colcon), "--log-base", str(ws / "log"), "build",
               "--base-paths", str(ws / "src"), "--build-base", str(ws / "build"), "--install-base", str(ws / "install"),
               "--event-handlers", "console_direct-", "desktop_notification-", "status-", "terminal_title-",
               "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}"]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ws, env=colcon_environment(ws / "colcon_home"),
                            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    elapsed = time.monotonic() - started
    logs = "\n".join(path.read_text(errors="replace")[-3000:] for path in sorted((ws / "log").rglob("stderr.log")))
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}\n{logs}"
    print(f"colcon build: {elapsed:.1f} s")
    return ws


def in_install_env(ws: Path, command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run `command` after sourcing install/local_setup.sh, as a colcon user would."""
    script = f'. "{ws}/install/local_setup.sh" && exec "$@"'
    return subprocess.run(["bash", "-c", script, "bash", *command], cwd=ws,
                          env=colcon_environment(ws / "colcon_home"), capture_output=True, text=True, **kwargs)


def test_share_directory_holds_launch_config_data_and_model(workspace):
    share = workspace / "install" / PACKAGE / "share" / PACKAGE
    for relative in ("package.xml", "launch/vljepa.launch.xml", "config/vljepa.yaml",
                     "data/demo_tabletop/demo_tabletop.mcap", "data/demo_tabletop/metadata.yaml",
                     "msg/SemanticEmbedding.msg", "srv/RankActions.srv"):
        assert (share / relative).is_file(), relative
    shipped = sorted(p.relative_to(ROOT / "models") for p in (ROOT / "models").rglob("*")
                     if p.is_file() and p.name != ".keep" and "training_state" not in p.parts
                     and not p.name.endswith(".partial"))
    installed = sorted(p.relative_to(share / "models") for p in (share / "models").rglob("*") if p.is_file())
    assert installed == shipped
    index = workspace / "install" / PACKAGE / "share" / "ament_index" / "resource_index"
    assert (index / "packages" / PACKAGE).is_file() and (index / "rosidl_interfaces" / PACKAGE).is_file()


def test_executables_mirror_console_scripts(workspace):
    lib = workspace / "install" / PACKAGE / "lib" / PACKAGE
    expected = {entry.split("=")[0]: entry.split("=")[1] for entry in setup_py_console_scripts()}
    assert sorted(p.name for p in lib.iterdir()) == sorted(expected)
    for name, target in expected.items():
        path = lib / name
        assert os.access(path, os.X_OK), name
        # --symlink-install links lib/vljepa_ros/<name> to the build tree's copy: it must be executable too.
        assert os.access(workspace / "build" / PACKAGE / "bin" / name, os.X_OK), name
        text = path.read_text()
        assert text.startswith(f"#!{sys.executable}\n"), text.splitlines()[0]
        module, function = target.split(":")
        assert f"from {module} import {function}\n" in text


def test_install_tree_imports_our_package_and_its_interfaces(workspace):
    install = workspace / "install" / PACKAGE
    probe = (
        "import json, vljepa_ros, vljepa_ros.msg, vljepa_ros.srv, vljepa_ros.cli\n"
        "import vljepa_ros.nodes.perception, vljepa_ros.nodes.monitor, vljepa_ros.nodes.action_inference\n"
        "import vljepa_ros.nodes.bringup\n"
        "from rclpy.serialization import deserialize_message, serialize_message\n"
        "from vljepa_ros.msg import SemanticEmbedding\n"
        "from vljepa_ros.srv import RankActions\n"
        "from vljepa_ros.paths import default_config_file, find_share_file\n"
        "from ament_index_python.packages import get_package_share_directory\n"
        "message = SemanticEmbedding(dimension=3, embedding=[1.0, 2.0, 3.0], query='q')\n"
        "back = deserialize_message(serialize_message(message), SemanticEmbedding)\n"
        "print(json.dumps({'init': vljepa_ros.__file__, 'msg': vljepa_ros.msg.__file__,\n"
        "  'srv': vljepa_ros.srv.__file__, 'nodes': vljepa_ros.nodes.perception.__file__,\n"
        "  'version': vljepa_ros.__version__, 'round_trip': list(back.embedding) == [1.0, 2.0, 3.0],\n"
        "  'request': RankActions.Request.__name__, 'share': get_package_share_directory('vljepa_ros'),\n"
        "  'config': str(default_config_file()), 'launch': str(find_share_file('launch/vljepa.launch.xml'))}))\n")
    result = in_install_env(workspace, [sys.executable, "-c", probe], timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    site_packages = str(install / "lib")
    # Our __init__.py (it carries __version__), not rosidl's empty one; everything from install/.
    assert found.pop("version") == "0.1.0"
    assert found.pop("round_trip") is True and found.pop("request") == "RankActions_Request"
    assert found.pop("share") == str(install / "share" / PACKAGE)
    for key, path in found.items():
        assert path.startswith(site_packages if key in ("init", "msg", "srv", "nodes") else str(install / "share")), \
            (key, path)
    assert Path(found["init"]).read_text() == (ROOT / PACKAGE / "__init__.py").read_text()


def test_cli_executable_runs(workspace):
    cli = workspace / "install" / PACKAGE / "lib" / PACKAGE / "vljepa-ros"
    result = in_install_env(workspace, [str(cli), "--help"], timeout=120)
    assert result.returncode == 0 and "usage: vljepa-ros" in result.stdout, result.stderr[-3000:]


def test_installed_perception_node_publishes_embeddings(workspace, tiny_model_dir):
    """`ros2 run vljepa_ros perception_node` without ros2cli: the installed executable, in the sourced
    install environment, driven over real topics by this process."""
    from sensor_msgs.msg import Image

    from ros_testing import ros_node, spin_until, stop_process_group
    from test_nodes import MODEL_LOAD_DEADLINE_S, image_message
    from vljepa_ros.msg import SemanticEmbedding

    executable = workspace / "install" / PACKAGE / "lib" / PACKAGE / "perception_node"
    script = f'. "{workspace}/install/local_setup.sh" && exec "$@"'
    log_path = workspace / "perception_node.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["bash", "-c", script, "bash", str(executable), "--ros-args", "-p", f"model_dir:={tiny_model_dir}"],
            cwd=workspace, env=dict(colcon_environment(workspace / "colcon_home"), PYTHONUNBUFFERED="1"),
            stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group, so stop_process_group can kill all of it
    try:
        with ros_node("colcon_perception_driver") as (node, executor):
            publisher = node.create_publisher(Image, "image_in", 10)
            embeddings: list[SemanticEmbedding] = []
            node.create_subscription(SemanticEmbedding, "embedding", embeddings.append, 10)
            index = [0]

            def publish_next() -> None:
                publisher.publish(image_message(index[0]))
                index[0] += 1

            spin_until(executor, lambda: len(embeddings) >= 2 or process.poll() is not None,
                       MODEL_LOAD_DEADLINE_S, every_spin=publish_next, what="2 embeddings from the installed node")
            assert process.poll() is None, "the installed perception_node died"
            assert embeddings[0].dimension == len(embeddings[0].embedding) > 0
    finally:
        returncode = stop_process_group(process)
        print(f"--- installed perception_node (exit code {returncode}) ---\n{log_path.read_text()}")
    assert returncode == 0
    assert "Traceback" not in log_path.read_text()


def test_package_xml_declares_every_ros_package_the_code_imports():
    """rosdep installs what package.xml names: every ROS package imported anywhere in vljepa_ros/ must
    be declared (a ROS package: in the ament index of the venv's wheels, or one with no wheel)."""
    import ast
    import xml.etree.ElementTree as ElementTree

    index = Path(sys.prefix) / "share" / "ament_index" / "resource_index" / "packages"
    without_wheels = {"cv_bridge", "launch", "launch_ros"}
    imported = set()
    for path in (ROOT / PACKAGE).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    ros_imports = {name for name in imported - {PACKAGE} if (index / name).is_file() or name in without_wheels}
    root = ElementTree.parse(ROOT / "package.xml").getroot()
    declared = {element.text for element in root if element.tag.endswith("depend")}
    assert ros_imports, "found no ROS imports at all: the scan is broken"
    assert ros_imports <= declared, sorted(ros_imports - declared)


def test_requirements_colcon_pins_equal_the_pip_route():
    """requirements-colcon.txt (pip packages colcon users need) pins what requirements.txt pins for the
    Python versions the pip route runs on; Humble's Python 3.10 alternatives are marked as such."""
    from packaging.requirements import Requirement

    def pins(path: Path, python_version: str) -> dict[str, str]:
        result = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if not line or line.startswith("-"):
                continue
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"python_version": python_version}):
                result[requirement.name.lower()] = str(requirement.specifier)
        return result

    pip_route = pins(ROOT / "requirements.txt", "3.11")
    for python_version in ("3.11", "3.12"):
        colcon = pins(ROOT / "requirements-colcon.txt", python_version)
        assert colcon and {name: pip_route.get(name) for name in colcon} == colcon
    assert "torch" in colcon and not any(name.startswith("ros-") for name in colcon)
