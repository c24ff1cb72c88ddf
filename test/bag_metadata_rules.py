"""What `ros2 bag` needs in a bag's metadata.yaml to open it, per distribution, held against our bags.

rosbag2 has no wheel, so its reader cannot run here. These are its decoding rules, read from
github.com/ros2/rosbag2: rosbag2_storage/src/rosbag2_storage/metadata_io.cpp on the `humble` branch
(0.15.x) and rosbag2_storage/include/rosbag2_storage/yaml.hpp on the `jazzy` branch (0.26.x; the same
rules on `rolling`, which Kilted branched from). Each field is
read with yaml-cpp's `as<T>()`, which throws when the field is missing or has another type; there is no
upper bound on the version, each field being read from the version that introduced it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

# (field, type, first version that reads it) of rosbag2_bagfile_information.
BAG_FIELDS = [("version", int, 1), ("storage_identifier", str, 1), ("duration", dict, 1),
              ("starting_time", dict, 1), ("message_count", int, 1), ("topics_with_message_count", list, 1),
              ("relative_file_paths", list, 1), ("compression_format", str, 3), ("compression_mode", str, 3),
              ("files", list, 5)]


def metadata_problems(bag: Path, distro: str) -> list[str]:
    """Why `distro`'s `ros2 bag` (humble, jazzy or kilted) would fail to read bag/metadata.yaml; [] if it would not."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    version = info.get("version")
    problems = []
    for name, kind, since in BAG_FIELDS:
        if version >= since and not isinstance(info.get(name), kind):
            problems.append(f"{name}: {info.get(name)!r} is not a {kind.__name__}")
    if version >= 6 and not (info.get("custom_data") is None or isinstance(info["custom_data"], dict)):
        problems.append("custom_data is neither empty nor a map")
    if distro != "humble" and version >= 8 and not isinstance(info.get("ros_distro"), str):
        problems.append("ros_distro missing")
    for entry in info.get("topics_with_message_count") or []:
        topic = entry["topic_metadata"]
        for name in ("name", "type", "serialization_format"):
            if not isinstance(topic.get(name), str):
                problems.append(f"topic {topic.get('name')}: {name} missing")
        qos = topic.get("offered_qos_profiles")
        if version >= 9 and distro == "humble":
            problems.append(f"version {version}: Humble reads offered_qos_profiles as a string, this one is a list")
        elif version >= 9 and not isinstance(qos, list):
            problems.append(f"topic {topic['name']}: offered_qos_profiles must be a list from version 9")
        elif 4 <= version < 9 and not isinstance(qos, str):
            problems.append(f"topic {topic['name']}: offered_qos_profiles must be a YAML string before version 9")
        if distro != "humble" and version >= 7 and not isinstance(topic.get("type_description_hash"), str):
            problems.append(f"topic {topic['name']}: type_description_hash missing")
    return problems


def installed_type_hash(msgtype: str) -> str:
    """The RIHS01 type hash the running distribution's rosidl generated for `msgtype` ('pkg/msg/Name'), from
    <prefix>/share/pkg/msg/Name.json: what its `ros2 bag` and its middleware compare a bag's hash with."""
    package, kind, name = msgtype.split("/")
    description = Path(sys.prefix, "share", package, kind, f"{name}.json")
    return json.loads(description.read_text())["type_hashes"][0]["hash_string"]


def topic_type_hashes(bag: Path) -> dict[str, str]:
    """type -> type_description_hash of each topic in bag/metadata.yaml."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return {entry["topic_metadata"]["type"]: entry["topic_metadata"]["type_description_hash"]
            for entry in info["topics_with_message_count"]}
