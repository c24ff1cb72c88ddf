"""A node never throws away a working model for a bad one (issue 35): over the real parameter service,
`model_dir` set to a missing or truncated directory is refused with the reason; one that passes that
check but fails to load leaves the working model serving (counted in `model_load_failures`); a valid
one replaces it; `engine_cache_dir` outside its rule is refused. The perception node's lifecycle is
covered in test_nodes_losses.py."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rclpy", reason="needs the ROS 2 wheels: run through `make test`")

from rcl_interfaces.msg import ParameterType, ParameterValue  # noqa: E402

from model_fixtures import ACTIONS, write_model_variants  # noqa: E402
from ros_testing import ros_node, ros_process  # noqa: E402
from test_nodes import MODEL_LOAD_DEADLINE_S, node_command  # noqa: E402
from test_nodes_losses import Driver, image_at, string_value  # noqa: E402
from vljepa_ros.srv import RankActions  # noqa: E402

WARN = 1


def swap_models(driver: Driver, variants: dict, serves) -> None:
    """Drive `model_dir` through the variants; `serves()` asserts the node still does its job."""
    first_id = driver.values()["model_id"]
    for label, reason in (("missing", "does not exist"), ("truncated", "truncated")):
        ok, why = driver.set_parameter("model_dir", string_value(str(variants[label])))
        assert not ok and reason in why and "model_dir" in why, (label, why)
    serves()
    ok, why = driver.set_parameter("model_dir", string_value(str(variants["mismatched"])))
    assert ok, why  # whole files: only loading them tells
    driver.wait(lambda: driver.counter("model_load_failures") == 1, "the failed load", MODEL_LOAD_DEADLINE_S)
    level, text, values = driver.fresh()
    assert level == WARN and "kept" in text and first_id in text and values["model_id"] == first_id, text
    serves()
    assert driver.set_parameter("model_dir", string_value(str(variants["valid"])))[0]
    driver.wait(lambda: driver.values().get("model_id") not in (None, first_id), "the new model",
                MODEL_LOAD_DEADLINE_S)
    assert driver.counter("model_load_failures") == 1
    serves()


def test_action_node_keeps_its_model_when_a_new_model_dir_is_bad(tmp_path, tiny_model_dir):
    variants = write_model_variants(tmp_path, tiny_model_dir)
    command = node_command("action_inference", tiny_model_dir, "stream_period_s:=0.0")
    with ros_process(command, "action_model_swap") as process, ros_node("action_swap_driver") as (node, executor):
        driver = Driver(node, executor, "action_inference_node")
        client = node.create_client(RankActions, "rank_actions")
        driver.wait(lambda: driver.latest() is not None and driver.latest()[1].startswith("running"),
                    "the model to load", MODEL_LOAD_DEADLINE_S)

        def serves() -> None:
            request = RankActions.Request(candidates=list(ACTIONS), initial_image=image_at(1), final_image=image_at(2))
            response = driver.call(client, request, "rank_actions")
            assert response.success, response.message

        swap_models(driver, variants, serves)
        # engine_cache_dir: resolved and confined (runtime/cache_dir_rules.py), refused with the reason.
        for value, reason in (("/etc/vljepa_probe", "not inside the cache root"), ("../../../../tmp/escape", "relative"),
                              (f"{tmp_path}/cache_probe/../cache_probe/deep/er", "'..'")):
            ok, why = driver.set_parameter("engine_cache_dir", string_value(value))
            assert not ok and reason in why, (value, why)
        assert not Path("/etc/vljepa_probe").exists() and not (tmp_path / "cache_probe").exists()
        assert driver.set_parameter("engine_cache_dir", string_value(str(tmp_path)))[0]  # an existing folder
        serves()
        assert process.poll() is None


def test_monitor_keeps_its_decoder_when_a_new_model_dir_is_bad(tmp_path, tiny_model_dir):
    variants = write_model_variants(tmp_path, tiny_model_dir)
    with ros_process(node_command("monitor", tiny_model_dir), "monitor_model_swap") as process, \
            ros_node("monitor_swap_driver") as (node, executor):
        driver = Driver(node, executor, "monitor_node")
        driver.wait(lambda: driver.latest() is not None and driver.latest()[1].startswith("running"),
                    "the decoder to load", MODEL_LOAD_DEADLINE_S)

        def serves() -> None:
            values = driver.fresh()[2]
            assert values["backend"] and values["model_id"] and values["decoder"] == "retrieval", values

        swap_models(driver, variants, serves)
        assert "(0: never)" in driver.description("max_segment_s")  # documented; 0 accepted
        ok, why = driver.set_parameter("max_segment_s", ParameterValue(type=ParameterType.PARAMETER_DOUBLE,
                                                                        double_value=0.0))
        assert ok, why
        assert "decoder not loaded" not in process.output()
        assert process.poll() is None
