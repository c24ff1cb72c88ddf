"""Synthetic robot worlds with exact ground truth: streams for training, evaluation, demos and bags.

ROS-free: bags are written and read with `rosbags`, never rclpy. Import the submodules you need:
    vljepa_ros.world.tabletop   procedural OpenCV tabletop world (generate_stream)
    vljepa_ros.world.dataset    training examples (generate_examples, make_action_clip, save/load_examples)
    vljepa_ros.world.bag_io     rosbag2 image bags + groundtruth.json (write_stream_bag, read_stream_bag)
"""
from vljepa_ros.world.types import ActionItem, Example, Segment, WorldDataError, WorldStream

__all__ = ["ActionItem", "Example", "Segment", "WorldDataError", "WorldStream"]
