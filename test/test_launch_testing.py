"""launch/vljepa.launch.py under launch_testing, the ROS-standard form of a launch integration test
(test/launch/vljepa_launch_test.py), run by launch_testing's own runner as `colcon test` would run it
through ament_cmake's add_launch_test(): with every launch argument given (a user YAML on the tiny
model, a camera topic, a namespace of its own). launch_testing's pytest plugin cannot collect it here:
its hooks take py.path arguments, which pytest 9 refuses (blocked in pytest.ini).

Also: the Python launch file starts exactly what the XML one starts (the command lines `ros2 launch`
builds, printed through `--launch-prefix echo` instead of running the nodes), with the defaults and
with every argument overridden, and both declare the same arguments.
"""
from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from ros2_cli_testing import SKIP_REASON, requires_ros2, ros2_environment, run, write_user_config  # noqa: E402
from ros_testing import REPO_ROOT  # noqa: E402

LAUNCH_TEST = REPO_ROOT / "test" / "launch" / "vljepa_launch_test.py"
LAUNCH_TEST_TIMEOUT_S = 300.0
NODES = ("perception_node", "monitor_node", "action_inference_node")


def test_python_launch_file_under_launch_testing(tmp_path, tiny_model_dir, ros_domain_of_this_test):
    pytest.importorskip("launch_testing", reason=SKIP_REASON)
    config = write_user_config(tmp_path / "my_robot.yaml", tiny_model_dir)
    env = ros2_environment(ros_domain_of_this_test, tmp_path / "ros_log")
    junit = tmp_path / "launch_test.xml"
    # The README's `ros2 launch vljepa_ros vljepa.launch.py namespace:=robot1 config:=...`, plus a camera topic.
    result = run([sys.executable, "-m", "launch_testing.launch_test", "--junit-xml", str(junit), str(LAUNCH_TEST),
                  "namespace:=robot1", f"config:={config}", "image_topic:=/robot1/camera/image_raw"],
                 env, timeout_s=LAUNCH_TEST_TIMEOUT_S)
    assert result.returncode == 0, result
    suite = ElementTree.parse(junit).getroot()
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert {"test_replayed_bag_gives_embeddings_events_and_hypotheses", "test_exit_codes"} <= set(cases), result
    assert all(len(case) == 0 for case in cases.values()), result  # no <failure>, <error> or <skipped>
    for node in NODES:
        assert re.search(rf"\[{node}-\d+\]: process has finished cleanly", result.output), result


def launched_commands(launch_file: str, arguments: list[str], env: dict[str, str]) -> list[str]:
    """The node command lines `ros2 launch` builds for `launch_file`, printed by `echo` instead of run.

    A parameter set in the launch file itself (the monitor's live_view) reaches the node as a temporary
    params file of a random name: it is replaced by its contents, so two launches compare equal."""
    result = run(["ros2", "launch", "vljepa_ros", launch_file, *arguments, "--launch-prefix", "echo"], env)
    assert result.returncode == 0, result
    commands = (re.sub(r"^\[echo-\d+\] ", "", line) for line in result.output.splitlines()
                if re.match(r"^\[echo-\d+\] /", line))
    return sorted(re.sub(r"\S*/launch_params_\w+", lambda path: " ".join(Path(path.group()).read_text().split()), command)
                  for command in commands)


@requires_ros2
def test_python_launch_file_starts_what_the_xml_one_starts(tmp_path, ros_domain_of_this_test):
    env = ros2_environment(ros_domain_of_this_test, tmp_path / "ros_log")
    config = tmp_path / "my_robot.yaml"
    config.write_text("/**/perception_node:\n  ros__parameters:\n    top_k: 1\n")
    overridden = [f"config:={config}", "image_topic:=/robot1/camera/image_raw", "namespace:=robot1", "live_view:=true"]
    for arguments in ([], overridden):
        xml_commands = launched_commands("vljepa.launch.xml", arguments, env)
        assert xml_commands == launched_commands("vljepa.launch.py", arguments, env), arguments
        assert [command.split()[0].rsplit("/", 2)[-2:] for command in xml_commands] == \
            [["vljepa_ros", node] for node in sorted(NODES)]
        for command in xml_commands:
            assert ("--params-file " + (str(config) if arguments else "")) in command
            assert ("__ns:=/robot1" if arguments else "__ns:=/vljepa") in command
            camera = "/robot1/camera/image_raw" if arguments else "/camera/image_raw"
            assert f"image_in:={camera} " in command and f"image_in/compressed:={camera}/compressed" in command
            if command.split()[0].endswith("monitor_node"):  # its live view, after the config so that it wins
                assert re.search(rf"--params-file \S+ --params-file .*live_view: {'true' if arguments else 'false'}",
                                 command), command
    shown = [run(["ros2", "launch", "vljepa_ros", name, "--show-args"], env)
             for name in ("vljepa.launch.xml", "vljepa.launch.py")]
    assert shown[0].output == shown[1].output and "'namespace'" in shown[0].output, shown
