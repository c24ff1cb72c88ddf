"""The package on each ROS 2 distribution the pip route installs (Kilted: rclpy 9, Jazzy: rclpy 7).

`make test` runs this on Jazzy, `make test-kilted` on Kilted (.ci/run runs both): the branch of each
difference that the running rclpy takes is exercised over the real middleware, the other one with the
dicts the other rclpy delivers. Bags: what `ros2 bag` of Humble, Jazzy and Kilted needs in their
metadata (test/bag_metadata_rules.py), their type hashes against the running distribution's, and
reading them back with each distribution's rosbags typestore.
"""
from __future__ import annotations

import importlib.metadata

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore

from bag_metadata_rules import installed_type_hash, metadata_problems, topic_type_hashes
from vljepa_ros.ros_distro import (BAG_METADATA_VERSION, FASTDDS_PROFILE_VARIABLES, distro_of_rclpy_version,
                                   fastdds_profile_variable,
                                   installed_ros_distro, rosbags_store_name)
from vljepa_ros.world import bag_io, tabletop


def wheel_installed(name: str) -> bool:
    try:
        importlib.metadata.version(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


RUNNING = installed_ros_distro()
requires_ros = pytest.mark.skipif(not wheel_installed("rclpy"), reason="needs the ROS 2 wheels: run through `make test`")


def test_rclpy_major_versions_name_their_distribution():
    assert [distro_of_rclpy_version(v) for v in ("3.3.16", "7.1.5", "9.1.2", "10.0.0", "")] == [
        "humble", "jazzy", "kilted", None, None]


def test_every_release_gets_a_rosbags_typestore():
    for distro in ("humble", "jazzy", "kilted", "lyrical", "rolling"):
        assert get_typestore(Stores(rosbags_store_name(distro))).types["sensor_msgs/msg/Image"]


@requires_ros
def test_the_installed_distribution_is_the_venvs_wheels():
    # Jazzy's wheels are named ros-jazzy-*; Kilted's plain ros-*. ROS_DISTRO (a shell's) must not outvote them.
    expected = "jazzy" if wheel_installed("ros-jazzy-rclpy") else "kilted"
    assert RUNNING == expected
    assert rosbags_store_name() == f"ros2_{expected}"


@pytest.fixture(scope="module")
def stream():
    return tabletop.generate_stream(seed=3, num_episodes=1, image_size=32)


@requires_ros
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("compressed", [False, True])
def test_bags_open_in_ros2_bag_of_each_distribution_with_the_running_ones_type_hashes(tmp_path, stream, storage,
                                                                                       compressed):
    bag = bag_io.write_stream_bag(tmp_path / "bag", stream, compressed=compressed, storage=storage)
    for distro in ("humble", "jazzy", "kilted"):
        assert metadata_problems(bag, distro) == [], distro
    hashes = topic_type_hashes(bag)
    assert hashes == {msgtype: installed_type_hash(msgtype) for msgtype in hashes}
    assert hashes.keys() == {bag_io.COMPRESSED_MSGTYPE if compressed else bag_io.IMAGE_MSGTYPE}


def test_metadata_rules_catch_what_each_ros2_bag_refuses(tmp_path, stream):
    """The rules are not vacuous: a version 9 bag is refused by Humble, a topic without a type hash by Jazzy."""
    bag = bag_io.write_stream_bag(tmp_path / "bag", stream, storage="mcap")
    metadata = (bag / "metadata.yaml").read_text()
    assert f"version: {BAG_METADATA_VERSION}\n" in metadata
    (bag / "metadata.yaml").write_text(metadata.replace("type_description_hash:", "hash_renamed:"))
    assert metadata_problems(bag, "jazzy") and not metadata_problems(bag, "humble")
    (bag / "metadata.yaml").write_text(metadata.replace(f"version: {BAG_METADATA_VERSION}\n", "version: 9\n"))
    assert metadata_problems(bag, "humble") and metadata_problems(bag, "jazzy")  # the QoS string is not a list


@pytest.mark.parametrize("store", [Stores.ROS2_HUMBLE, Stores.ROS2_JAZZY, Stores.ROS2_KILTED])
def test_bags_read_back_with_each_distributions_typestore(tmp_path, stream, store):
    bag = bag_io.write_stream_bag(tmp_path / "bag", stream, storage="sqlite3")
    frames = []
    with AnyReader([bag], default_typestore=get_typestore(store)) as reader:
        for connection, _, raw in reader.messages():
            message = reader.deserialize(raw, connection.msgtype)
            frames.append(bag_io.message_to_rgb(message, connection.msgtype))
    assert np.array_equal(np.stack(frames), stream.frames)


@requires_ros
def test_the_running_fast_dds_reads_one_of_the_profile_variables_the_package_sets():
    """Kilted's Fast DDS 3 and Jazzy's Fast DDS 2.14 each read a different variable for the XML profile."""
    import sys
    from pathlib import Path

    libraries = sorted(Path(sys.prefix, "lib").glob("libfast[dr][dt][sp]*.so.*.*.*"))  # libfastdds / libfastrtps
    assert libraries, "no Fast DDS library in the venv"
    read = [variable for variable in FASTDDS_PROFILE_VARIABLES if variable.encode() in libraries[0].read_bytes()]
    assert read == [fastdds_profile_variable()], (libraries[0].name, read)  # the one the bench sets


@requires_ros
def test_an_unavailable_lifecycle_transition_is_refused_and_the_state_kept():
    import rclpy
    import rclpy.lifecycle.node
    from rclpy.context import Context

    from vljepa_ros.nodes.rclpy_compat import LifecycleNode

    # The override takes effect only while rclpy keeps routing transitions through this name.
    assert hasattr(rclpy.lifecycle.node.LifecycleNodeMixin, "_LifecycleNodeMixin__change_state")
    context = Context()
    rclpy.init(context=context)
    try:
        node = LifecycleNode("transition_refusal_test", context=context)
        try:
            assert node.trigger_activate() == rclpy.lifecycle.TransitionCallbackReturn.ERROR  # before configure
            assert node._state_machine.current_state[1] == "unconfigured"
            assert node.trigger_configure() == rclpy.lifecycle.TransitionCallbackReturn.SUCCESS
            assert node._state_machine.current_state[1] == "inactive"
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def fastdds_gid(byte: int) -> dict:
    """A publisher GID as rclpy 9 puts it in MessageInfo."""
    return {"implementation_identifier": "rmw_fastrtps_cpp", "data": bytes([byte]) * 16}


def test_publishers_are_told_apart_by_gid_where_rclpy_gives_one():
    """rclpy 9 (Kilted): two publishers at once, each keeps its name."""
    from vljepa_ros.nodes.rclpy_compat import PublisherIdentifier

    name = PublisherIdentifier()
    a = [name({"publisher_gid": fastdds_gid(1), "publication_sequence_number": n}) for n in (7, 8)]
    b = [name({"publisher_gid": fastdds_gid(2), "publication_sequence_number": n}) for n in (1, 2)]
    a.append(name({"publisher_gid": fastdds_gid(1), "publication_sequence_number": 9}))
    assert len(set(a)) == 1 and len(set(b)) == 1 and a[0] != b[0]


def test_a_restarted_publisher_is_found_from_its_sequence_numbers_without_a_gid():
    """rclpy 7 (Jazzy): no GID; a new writer's publication sequence numbers start over."""
    from vljepa_ros.nodes.rclpy_compat import PublisherIdentifier

    name = PublisherIdentifier()
    first = [name({"publication_sequence_number": n}) for n in (1, 2, 5)]
    restarted = [name({"publication_sequence_number": n}) for n in (1, 2)]
    assert len(set(first)) == 1 and len(set(restarted)) == 1 and first[0] != restarted[0]
    assert name(None) == restarted[0]  # no info at all (a direct call): the current publisher


@requires_ros
def test_the_running_rclpy_names_each_publisher_of_a_topic_once_and_a_new_one_anew():
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from ros_testing import DISCOVERY_DEADLINE_S, ros_node, spin_until
    from vljepa_ros.nodes.rclpy_compat import PublisherIdentifier

    reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    identify = PublisherIdentifier()
    received: list[tuple[str, str]] = []
    with ros_node("publisher_identity_test") as (node, executor):
        node.create_subscription(String, "chatter", lambda message, info: received.append((message.data, identify(info))),
                                 reliable)
        for generation in ("first", "second"):  # the second publisher is made after the first is gone
            publisher = node.create_publisher(String, "chatter", reliable)
            spin_until(executor, lambda: sum(data == generation for data, _ in received) >= 3, DISCOVERY_DEADLINE_S,
                       every_spin=lambda: publisher.publish(String(data=generation)), what=f"3 from the {generation}")
            node.destroy_publisher(publisher)
    names = {generation: {name for data, name in received if data == generation} for generation in ("first", "second")}
    assert len(names["first"]) == 1 and len(names["second"]) == 1 and names["first"] != names["second"]
