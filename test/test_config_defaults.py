"""Defaults are defined once: every parameter config/vljepa.yaml sets equals the node's declared
default, or differs on purpose (listed below with why), and every parameter it sets exists."""
from __future__ import annotations

import pytest
import yaml

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from vljepa_ros.paths import default_config_file  # noqa: E402

# (node, parameter) -> why the deployment file differs from the code's default. Empty today: the
# YAML documents the defaults; add an entry here (with the reason) to make a deployment differ.
DELIBERATELY_DIFFERENT: dict[tuple[str, str], str] = {}


def declared_parameters() -> dict[str, dict]:
    from vljepa_ros.nodes import action_inference, monitor, perception
    return {module_name: {spec.name: spec for spec in module.PARAMETERS}
            for module_name, module in (("perception_node", perception), ("monitor_node", monitor),
                                        ("action_inference_node", action_inference))}


def test_every_parameter_of_the_config_equals_the_declared_default_or_is_listed():
    config = yaml.safe_load(default_config_file().read_text())
    declared = declared_parameters()
    differences = []
    for key, section in config.items():
        node = key.rsplit("/", 1)[-1]
        assert node in declared, f"{key}: no such node"
        for name, value in section["ros__parameters"].items():
            assert name in declared[node], f"{node}.{name} in the config is not a parameter of the node"
            default = declared[node][name].default
            assert type(value) is type(default), f"{node}.{name}: {value!r} is not a {type(default).__name__}"
            if value != default and (node, name) not in DELIBERATELY_DIFFERENT:
                differences.append(f"{node}.{name}: config {value!r}, code {default!r}")
    assert not differences, "config/vljepa.yaml and the code disagree (fix one, or list it with why):\n" + \
        "\n".join(differences)
    listed_but_equal = [item for item in DELIBERATELY_DIFFERENT
                        if config[f"/**/{item[0]}"]["ros__parameters"].get(item[1]) == declared[item[0]][item[1]].default]
    assert not listed_but_equal, f"listed as different but equal: {listed_but_equal}"


def test_image_queue_depth_default_is_the_configs():
    declared = declared_parameters()
    assert declared["perception_node"]["image_queue_depth"].default == 30


def test_eval_and_the_nodes_share_the_clip_and_detector_defaults():
    """`vljepa-ros eval` scores the clips and segments the nodes make: same defaults in its CLI, in
    EvalOptions and in the nodes' parameters (all derive from stream/; this catches a copy creeping back)."""
    from dataclasses import fields

    from vljepa_ros.cli import build_parser
    from vljepa_ros.evaluation import EvalOptions
    from vljepa_ros.stream.shift_detector import DetectorSettings

    cli = build_parser().parse_args(["eval"])
    options = EvalOptions()
    declared = declared_parameters()
    for name in ("stride_frames", "sample_period_s"):
        assert getattr(cli, name) == getattr(options, name) == declared["perception_node"][name].default, name
    assert options.query == declared["perception_node"]["query"].default
    reuse = {"skip_unchanged_clips": "enabled", "unchanged_threshold": "threshold", "reuse_max_age_s": "max_age_s"}
    for parameter, field_name in reuse.items():
        assert (getattr(cli, parameter) == getattr(options.reuse, field_name)
                == declared["perception_node"][parameter].default), parameter
    for field in fields(DetectorSettings):
        assert (getattr(cli, field.name) == getattr(options.online, field.name)
                == declared["monitor_node"][field.name].default == field.default), field.name
