"""The README's walkthrough for real: `ros2 launch`, `ros2 run`, `ros2 param`, `ros2 lifecycle`,
`ros2 topic echo`, `ros2 interface show`, `ros2 service call` and `vljepa-ros replay` against the
installed package's nodes, each command taken verbatim from the README (so the README cannot drift:
`test_every_walkthrough_command_is_run_by_a_test` fails on a command no test runs).

The launched nodes are the installed ones (`<prefix>/lib/vljepa_ros/*`, found through the ament
index, no source tree on PYTHONPATH), as a user meets them after `make env` (or `colcon build`).

Stacks:
  * `deployment` (module scope, its own ROS_DOMAIN_ID): `ros2 launch vljepa_ros vljepa.launch.xml
    image_topic:=... config:=<user YAML>` on the tiny test model, fed by the demo bag replayed in a
    loop onto that camera topic; the inspection and steering commands run against it.
  * the defaults (`ros2 launch vljepa_ros vljepa.launch.xml`, the shipped small model and YAML), fed on
    /camera/image_raw, flushed with `ros2 service call`, then stopped with Ctrl-C.
  * `ros2 run vljepa_ros perception_node` alone.
Every wait is for a real message, state or output with a deadline; ros2cli verbs run with
--no-daemon and are retried (up to a deadline) while their discovery window missed the node.
"""
from __future__ import annotations

import inspect
import re
import shlex
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

import yaml  # noqa: E402

from model_fixtures import ACTIONS, CAPTIONS, LABELS  # noqa: E402
from ros2_cli_testing import (ROS2, USER_MAX_SEGMENT_S, USER_QUERY, ctrl_c, discovered, interrupt_group,  # noqa: E402
                              requires_ros2, ros2_environment, run, run_until, running, write_user_config)
from ros_testing import REPO_ROOT, LoggedProcess, ros_node, spin_until, wait_for_exit  # noqa: E402
from test_package import setup_py_console_scripts  # noqa: E402

README = REPO_ROOT / "README.md"
NODES = ("perception_node", "monitor_node", "action_inference_node")
READY_MESSAGES = {"perception_node": "active", "monitor_node": "running", "action_inference_node": "running"}
READY_DEADLINE_S = 120.0  # three processes import torch and load a model at once on 2 cores
OUTPUT_DEADLINE_S = 60.0
VERB_DEADLINE_S = 60.0
FRAMES_WHILE_INACTIVE = 20  # camera frames the action node must see while perception is inactive

# --- the README walkthrough's commands that this module runs (verbatim) -------------------------
PIP_SETUP = ("source .venv/bin/activate", "export AMENT_PREFIX_PATH=$VIRTUAL_ENV")
LAUNCH_DEFAULTS = "ros2 launch vljepa_ros vljepa.launch.xml"
LAUNCH_DEPLOYMENT = ("ros2 launch vljepa_ros vljepa.launch.xml image_topic:=/robot/camera/image_raw "
                     "config:=/path/to/my_robot.yaml")
RUN_PERCEPTION = "ros2 run vljepa_ros perception_node --ros-args -r __ns:=/vljepa -r image_in:=/camera/image_raw"
REPLAY_DEFAULT = "vljepa-ros replay data/demo_tabletop --rate 1.0 --loop"
REPLAY_DEPLOYMENT = "vljepa-ros replay data/demo_tabletop --remap-to /robot/camera/image_raw/compressed --loop"
NODE_LIST = "ros2 node list"
ECHO_EVENT = "ros2 topic echo --once /vljepa/event"
INTERFACE_SHOW = "ros2 interface show vljepa_ros/msg/SemanticEmbedding"
PARAM_SET_QUERY = 'ros2 param set /vljepa/perception_node query "Where is the cube?"'
PARAM_SET_TOP_K = "ros2 param set /vljepa/perception_node top_k 1000"
DEACTIVATE = "ros2 lifecycle set /vljepa/perception_node deactivate"
ACTIVATE = "ros2 lifecycle set /vljepa/perception_node activate"
LIFECYCLE_GET = "ros2 lifecycle get /vljepa/perception_node"
FLUSH = "ros2 service call /vljepa/monitor_node/flush std_srvs/srv/Trigger"
MY_ROBOT_YAML = "/path/to/my_robot.yaml"
DEPLOYMENT_CAMERA = "/robot/camera/image_raw"

# Walkthrough commands run elsewhere: (test file, a fragment that file must contain).
RUN_ELSEWHERE = {
    "source install/setup.bash": ("test_colcon_build.py", "install/local_setup.sh"),
    "python examples/planner_node.py": ("test_example_planner.py", "examples/planner_node.py"),
    "vljepa-ros record --out output/run1 --topics /vljepa/embedding /vljepa/event /vljepa/action_hypotheses":
        ("test_bag_tools.py", '"record", "--out"'),
    "vljepa-ros eval --bag data/demo_tabletop --json output/eval.json --plots-dir output/eval":
        ("test_eval_run.py", '"eval", "--model"'),
    "vljepa-ros export --model models/paper --out ~/.cache/vljepa_ros --tensorrt --fp16":
        ("test_runtime_backends.py", '"--tensorrt", "--fp16"'),
    "ros2 launch vljepa_ros vljepa.launch.py namespace:=robot1 config:=/path/to/my_robot.yaml":
        ("test_launch_testing.py", '"namespace:=robot1"'),
    # The launched command lines (live_view reaches the monitor); the live view itself: test_nodes_live_view.py.
    "ros2 launch vljepa_ros vljepa.launch.xml live_view:=true": ("test_launch_testing.py", '"live_view:=true"'),
}
# The fields `ros2 topic echo --once /vljepa/event` prints, in order (the README lists them).
EVENT_FIELDS = ["header", "segment_start", "segment_end", "embeddings_in_segment", "model_id", "dimension",
                "embedding", "text", "text_score", "decoder", "shift_score", "shift_threshold", "trigger", "sequence",
                "familiarity", "familiarity_threshold", "in_distribution"]


# ---------------------------------------------------------------------------------------------
# The README
# ---------------------------------------------------------------------------------------------
def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def walkthrough_commands() -> list[str]:
    """Every command line of the walkthrough's ```bash blocks (continuations joined)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme_section("Walkthrough for a roboticist"), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(re.sub(r"\s+", " ", line))
    return commands


def readme_command(line: str, substitutions: dict[str, str] | None = None) -> list[str]:
    """`line` as argv, after checking the README walkthrough still shows it; placeholders replaced."""
    assert line in walkthrough_commands(), f"the README walkthrough no longer shows `{line}`"
    args = shlex.split(line)
    for placeholder, value in (substitutions or {}).items():
        args = [arg.replace(placeholder, value) for arg in args]
    return args


def test_every_walkthrough_command_is_run_by_a_test():
    """Each command of the walkthrough's bash blocks is run by a test of this module (its constant
    appears in that test) or by the named test file; and each command this module runs is shown."""
    mine = {value: name for name, value in globals().items()
            if name.isupper() and isinstance(value, str) and value in walkthrough_commands()}
    mine.update({line: "PIP_SETUP" for line in PIP_SETUP})
    source = inspect.getsource(sys.modules[__name__])
    problems = []
    for line in walkthrough_commands():
        if line in mine:
            if not re.search(rf"[(\[*]\s*{mine[line]}\b", source):  # passed to readme_command / ros2 / a list
                problems.append(f"`{line}`: no test here runs {mine[line]}")
        elif line in RUN_ELSEWHERE:
            file_name, fragment = RUN_ELSEWHERE[line]
            if fragment not in (REPO_ROOT / "test" / file_name).read_text():
                problems.append(f"`{line}`: test/{file_name} no longer contains {fragment!r}")
        else:
            problems.append(f"`{line}` is not run by any test (add it here or to RUN_ELSEWHERE)")
    shown = set(walkthrough_commands())
    problems += [f"RUN_ELSEWHERE lists `{line}`, which the README no longer shows" for line in RUN_ELSEWHERE
                 if line not in shown]
    assert not problems, "\n".join(problems)
    # The pip set-up names `make ros2cli`, which `make test` runs before the tests (going on without it).
    test_rule = re.search(r"^test: .*\n((?:\t.*\n)+)", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert test_rule and re.search(r"\$\(MAKE\).*\bros2cli\b", test_rule.group(1))


def test_readme_lists_the_event_fields_that_topic_echo_prints():
    bullet = next(line for line in readme_section("Walkthrough for a roboticist").split("\n- ")
                  if line.startswith(f"`{ECHO_EVENT}`"))
    named = re.findall(r"`(\w+)`", bullet)
    assert [name for name in named if name in EVENT_FIELDS] == EVENT_FIELDS, named


# ---------------------------------------------------------------------------------------------
# The pip install has what `ros2 run` / `ros2 launch` need
# ---------------------------------------------------------------------------------------------
def console_script_names() -> list[str]:
    return [entry.split("=")[0] for entry in setup_py_console_scripts()]


def test_pip_install_puts_the_executables_where_ros2_looks():
    """setup.py installs a wrapper per console script into <prefix>/lib/vljepa_ros (ros_executables/);
    the installed ones are executable and exec the console script of the same name."""
    sources = sorted((REPO_ROOT / "ros_executables").iterdir())
    assert [path.name for path in sources] == sorted(console_script_names())
    assert len({path.read_bytes() for path in sources}) == 1, "the wrappers differ"
    installed = Path(sys.prefix) / "lib" / "vljepa_ros"
    assert sorted(path.name for path in installed.iterdir()) == sorted(console_script_names()), \
        "run `make env`: the installed package predates ros_executables/"
    for path in installed.iterdir():
        assert path.stat().st_mode & 0o111, f"{path} is not executable"
        assert (Path(sys.prefix) / "bin" / path.name).is_file(), f"no console script {path.name} beside it"
    for marker in ("share/vljepa_ros/package.xml", "share/ament_index/resource_index/packages/vljepa_ros"):
        assert (Path(sys.prefix) / marker).is_file(), marker


# ---------------------------------------------------------------------------------------------
# Observing the nodes from the test
# ---------------------------------------------------------------------------------------------
@dataclass
class Outputs:
    """What the nodes of one namespace publish, as the test receives it."""
    embeddings: list = field(default_factory=list)
    events: list = field(default_factory=list)
    hypotheses: list = field(default_factory=list)
    status: dict[str, tuple[str, dict[str, str], int]] = field(default_factory=dict)  # node -> (message, values, n)
    namespace: str = "/vljepa"

    @classmethod
    def subscribe(cls, node, namespace: str = "/vljepa") -> Outputs:
        from diagnostic_msgs.msg import DiagnosticArray

        from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent
        outputs = cls()
        outputs.namespace = namespace
        node.create_subscription(SemanticEmbedding, f"{namespace}/embedding", outputs.embeddings.append, 100)
        node.create_subscription(SemanticEvent, f"{namespace}/event", outputs.events.append, 100)
        node.create_subscription(ActionHypotheses, f"{namespace}/action_hypotheses", outputs.hypotheses.append, 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", outputs._on_diagnostics, 50)
        return outputs

    def _on_diagnostics(self, array) -> None:
        for status in array.status:
            count = self.status.get(status.name, ("", {}, 0))[2] + 1
            self.status[status.name] = (status.message, {kv.key: kv.value for kv in status.values}, count)

    def of(self, node_name: str) -> tuple[str, dict[str, str], int]:
        return self.status.get(f"{self.namespace}/{node_name}", ("", {}, 0))

    def ready(self) -> bool:
        return all(self.of(name)[0] == message for name, message in READY_MESSAGES.items())


def alive_check(*processes: LoggedProcess):
    """A `done` wrapper for spin_until that fails at once, with the output, when a process died."""
    def check(done):
        def wrapped() -> bool:
            for process in processes:
                assert not wait_for_exit(process, 0.0), f"{' '.join(process.args)} exited:\n{process.output()}"
            return done()
        return wrapped
    return check


# ---------------------------------------------------------------------------------------------
# The deployment: image_topic:= and config:= (a user YAML), fed by the demo bag in a loop
# ---------------------------------------------------------------------------------------------
@dataclass
class Deployment:
    domain: int
    env: dict[str, str]
    node: object
    executor: object
    outputs: Outputs
    launch: LoggedProcess

    def spin(self) -> None:
        self.executor.spin_once(timeout_sec=0.05)

    def wait(self, done, what: str, timeout_s: float = OUTPUT_DEADLINE_S) -> None:
        started = time.monotonic()
        spin_until(self.executor, alive_check(self.launch)(done), timeout_s, what=what)
        print(f"{time.monotonic() - started:5.1f} s waiting for {what}")

    def ros2(self, line: str, done=discovered, substitutions: dict[str, str] | None = None):
        """A README ros2cli line (retried while discovery missed its node), spinning meanwhile."""
        return run_until(readme_command(line, substitutions), self.env, done, VERB_DEADLINE_S, self.spin)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, tiny_model_dir) -> Iterator[Deployment]:
    if ROS2 is None:
        pytest.skip("no ros2 command line")
    from domain_coordinator import domain_id

    tmp = tmp_path_factory.mktemp("deployment")
    config = write_user_config(tmp / "my_robot.yaml", tiny_model_dir)
    with domain_id() as domain:  # conftest's per-test domain is function-scoped: this stack has its own
        env = ros2_environment(domain, tmp / "ros_log")
        launch_args = readme_command(LAUNCH_DEPLOYMENT, {MY_ROBOT_YAML: str(config)})
        with ros_node("walkthrough_observer", domain) as (node, executor), \
                running(launch_args, env, "ros2_launch_deployment") as launch:
            deployment = Deployment(domain, env, node, executor, Outputs.subscribe(node), launch)
            deployment.wait(deployment.outputs.ready, "the three launched nodes to be ready", READY_DEADLINE_S)
            with running(readme_command(REPLAY_DEPLOYMENT), env, "replay_deployment") as replay:
                deployment.wait(alive_check(replay)(lambda: deployment.outputs.embeddings), "a first embedding")
                yield deployment


@requires_ros2
def test_launch_with_image_topic_and_config_runs_that_deployment(deployment, tiny_model_dir):
    """Each node took its parameters from the user YAML (the tiny model, the query, a 1 s segment
    limit, a 0.5 s hypotheses period) and the camera came in on the remapped topic."""
    outputs = deployment.outputs
    deployment.wait(lambda: len(outputs.events) >= 2 and len(outputs.hypotheses) >= 2 and len(outputs.embeddings) >= 5,
                    "embeddings, events and action hypotheses")
    nodes = deployment.ros2(NODE_LIST, done=lambda r: all(f"/vljepa/{name}" in r.output for name in NODES))
    first = outputs.embeddings[0]
    assert first.model_id.startswith("tiny-"), "perception did not take model_dir from the user YAML"
    assert first.query == USER_QUERY, "perception did not take the query from the user YAML"
    assert set(first.top_labels) <= set(LABELS) and first.top_labels
    assert np.isclose(np.linalg.norm(np.asarray(first.embedding, np.float32)), 1.0, atol=1e-4)
    for event in outputs.events[:2]:
        assert event.trigger == "max_segment", "the monitor did not take max_segment_s from the user YAML"
        assert event.text in CAPTIONS and event.model_id == first.model_id
        span_s = (event.segment_end.sec - event.segment_start.sec) + \
                 (event.segment_end.nanosec - event.segment_start.nanosec) / 1e9
        assert span_s >= USER_MAX_SEGMENT_S - 0.5
    for hypotheses in outputs.hypotheses[:2]:
        assert hypotheses.model_id == first.model_id and set(hypotheses.actions) == set(ACTIONS)
    assert all(f"/vljepa/{name}" in nodes.output for name in NODES)


@requires_ros2
def test_topic_echo_once_prints_an_event(deployment):
    result = deployment.ros2(ECHO_EVENT, done=lambda r: r.returncode == 0 and "trigger:" in r.output)
    document = result.output[result.output.index("header:"):].split("\n---")[0]
    event = yaml.safe_load(document)
    assert list(event) == EVENT_FIELDS
    assert event["trigger"] in ("shift", "max_segment", "flush") and event["text"] in CAPTIONS
    assert len(event["embedding"]) == event["dimension"] > 0


@requires_ros2
def test_interface_show_prints_the_message_definition(deployment):
    result = run(readme_command(INTERFACE_SHOW), deployment.env)
    printed = [line.rstrip() for line in result.output.splitlines()]
    definition = [line.rstrip() for line in (REPO_ROOT / "msg" / "SemanticEmbedding.msg").read_text().splitlines()]
    remaining = iter(printed)  # the file's lines, in order, with the nested types expanded between them
    missing = [line for line in definition if not any(line == other for other in remaining)]
    assert result.returncode == 0 and not missing, f"{missing[:3]} not printed:\n{result}"
    assert "\tbuiltin_interfaces/Time stamp" in printed  # std_msgs/Header expanded


@requires_ros2
def test_param_set_changes_the_query_and_refuses_bad_values_with_the_reason(deployment):
    outputs = deployment.outputs
    accepted = deployment.ros2(PARAM_SET_QUERY)
    deployment.wait(lambda: any(e.query == "Where is the cube?" for e in outputs.embeddings),
                    "an embedding with the new query")
    too_large = deployment.ros2(PARAM_SET_TOP_K)
    empty = run_until(["ros2", "param", "set", "/vljepa/perception_node", "query", ""], deployment.env, discovered,
                      VERB_DEADLINE_S, deployment.spin)
    count = len(outputs.embeddings)
    deployment.wait(lambda: len(outputs.embeddings) >= count + 3, "embeddings after the refused values")
    assert "Set parameter successful" in accepted.output, accepted
    assert "Setting parameter failed: Parameter top_k out of range. Min: 0, Max: 100, value: 1000" in too_large.output
    assert "Setting parameter failed: query must not be empty" in empty.output, empty
    later = outputs.embeddings[count:]  # the refused values changed nothing
    assert all(e.query == "Where is the cube?" for e in later) and all(len(e.top_labels) == 3 for e in later)


@requires_ros2
def test_lifecycle_deactivate_stops_embeddings_and_activate_resumes_them(deployment):
    """While inactive, the action node keeps receiving the camera (frames flow) but the perception
    node publishes nothing: its published count stays put and no embedding with a later sequence
    arrives. Activated again, embeddings with later sequence numbers come."""
    outputs = deployment.outputs
    deactivated = deployment.ros2(DEACTIVATE)
    inactive = deployment.ros2(LIFECYCLE_GET, done=lambda r: discovered(r) and "inactive" in r.output)
    deployment.wait(lambda: outputs.of("perception_node")[0] == "inactive", "perception diagnostics: inactive")
    published_at_stop = int(outputs.of("perception_node")[1]["embeddings_published"])
    frames_at_stop = int(outputs.of("action_inference_node")[1]["images_received"])
    deployment.wait(lambda: int(outputs.of("action_inference_node")[1]["images_received"])
                    >= frames_at_stop + FRAMES_WHILE_INACTIVE, "camera frames while perception is inactive")
    reports = outputs.of("perception_node")[2]
    deployment.wait(lambda: outputs.of("perception_node")[2] > reports, "a later perception diagnostics report")
    published_while_inactive = int(outputs.of("perception_node")[1]["embeddings_published"])
    received_while_inactive = [e.sequence for e in outputs.embeddings if e.sequence >= published_at_stop]
    activated = deployment.ros2(ACTIVATE)
    deployment.wait(lambda: outputs.of("perception_node")[0] == "active", "perception diagnostics: active")
    deployment.wait(lambda: any(e.sequence >= published_at_stop for e in outputs.embeddings),
                    "an embedding after activate")
    assert "Transitioning successful" in deactivated.output and "Transitioning successful" in activated.output
    assert "inactive [2]" in inactive.output, inactive
    assert published_while_inactive == published_at_stop, "perception published while inactive"
    assert not received_while_inactive, f"embeddings {received_while_inactive} arrived while inactive"


# ---------------------------------------------------------------------------------------------
# The defaults, then Ctrl-C
# ---------------------------------------------------------------------------------------------
@requires_ros2
def test_launch_with_the_defaults_then_ctrl_c_finishes_every_node_cleanly(tmp_path, ros_domain_of_this_test):
    """The shipped YAML and small model, the camera on /camera/image_raw: the replayed demo bag gives
    embeddings, `~/flush` an event; Ctrl-C (SIGINT to the launch's process group) ends all three
    nodes cleanly and leaves nothing running."""
    env = ros2_environment(ros_domain_of_this_test, tmp_path / "ros_log")
    with ros_node("defaults_observer", ros_domain_of_this_test) as (node, executor), \
            running(readme_command(LAUNCH_DEFAULTS), env, "ros2_launch_defaults") as launch:
        outputs = Outputs.subscribe(node)
        alive = alive_check(launch)
        spin_until(executor, alive(outputs.ready), READY_DEADLINE_S, what="the three launched nodes to be ready")
        with running(readme_command(REPLAY_DEFAULT), env, "replay_defaults") as replay:
            spin_until(executor, alive_check(launch, replay)(lambda: len(outputs.embeddings) >= 2),
                       OUTPUT_DEADLINE_S, what="embeddings")
            flushed = run_until(readme_command(FLUSH), env, lambda r: re.search(r"message='[1-9]\d* event", r.output),
                                VERB_DEADLINE_S, lambda: executor.spin_once(timeout_sec=0.05))
            spin_until(executor, alive(lambda: any(e.trigger == "flush" for e in outputs.events)), OUTPUT_DEADLINE_S,
                       what="the flush event")
        stop = ctrl_c(launch)
    embedding = outputs.embeddings[0]
    assert embedding.model_id.startswith("small-") and embedding.query == "What is happening?"
    assert embedding.top_labels and embedding.dimension == len(embedding.embedding)
    event = next(e for e in outputs.events if e.trigger == "flush")
    assert event.text and event.model_id == embedding.model_id, flushed
    problems = stop.problems(NODES)
    assert not problems, "\n".join(problems) + "\n" + stop.output[-3000:]


# ---------------------------------------------------------------------------------------------
# ros2 run, after the pip set-up lines of the README
# ---------------------------------------------------------------------------------------------
@requires_ros2
def test_pip_setup_then_ros2_run_perception_node(tmp_path, ros_domain_of_this_test):
    from sensor_msgs.msg import Image

    from vljepa_ros.nodes.common import ns_to_stamp

    env = ros2_environment(ros_domain_of_this_test, tmp_path / "ros_log")
    checks = []
    if Path(sys.prefix).resolve() == (REPO_ROOT / ".venv").resolve() and ROS2 == str(Path(sys.prefix) / "bin" / "ros2"):
        # The README's pip set-up, literally, in a shell that has neither the venv nor the ament index.
        bare = dict(env, PATH=env["PATH"].split(":", 1)[1])
        bare.pop("AMENT_PREFIX_PATH")
        script = " && ".join([*PIP_SETUP, "ros2 pkg executables vljepa_ros", "ros2 run vljepa_ros vljepa-ros --help"])
        checks.append(run(["bash", "-c", script], bare))
    frame = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    sent = [0]

    def publish_frame() -> None:
        message = Image(height=64, width=64, encoding="rgb8", step=64 * 3, data=frame.tobytes())
        message.header.stamp = ns_to_stamp(1_000_000_000 + sent[0] * 100_000_000)
        sent[0] += 1
        camera.publish(message)

    with ros_node("ros2_run_observer", ros_domain_of_this_test) as (node, executor), \
            running(readme_command(RUN_PERCEPTION), env, "ros2_run_perception") as perception:
        camera = node.create_publisher(Image, "/camera/image_raw", 10)
        outputs = Outputs.subscribe(node)
        alive = alive_check(perception)
        spin_until(executor, alive(lambda: outputs.of("perception_node")[0] == "active"), READY_DEADLINE_S,
                   what="perception active")
        spin_until(executor, alive(lambda: outputs.embeddings), OUTPUT_DEADLINE_S, every_spin=publish_frame,
                   what="an embedding from the published frames")
        started = time.monotonic()
        returncode = interrupt_group(perception)
        stopped_after_s = time.monotonic() - started
        output = perception.output()
    for check in checks:
        assert check.returncode == 0, check
        assert all(f"vljepa_ros {name}" in check.output for name in console_script_names()), check
        assert "usage: vljepa-ros" in check.output, check
    assert outputs.embeddings[0].model_id.startswith("small-")
    assert returncode == 0 and stopped_after_s < 5.0 and "Traceback" not in output, output
