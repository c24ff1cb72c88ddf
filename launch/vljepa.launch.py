"""VL-JEPA semantic perception: perception, monitor (selective decoding) and action inference.

The Python twin of vljepa.launch.xml: the same arguments, defaults, namespace, remappings and
parameter file (test/test_launch_testing.py runs it with launch_testing).

    ros2 launch vljepa_ros vljepa.launch.py image_topic:=/camera/image_raw
    ros2 launch vljepa_ros vljepa.launch.py config:=/path/to/my_robot.yaml
    ros2 launch vljepa_ros vljepa.launch.py live_view:=true
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

PACKAGE = "vljepa_ros"
# Executables in the order of the XML file; each may subscribe the camera (the monitor only for its live view).
NODES = ("perception_node", "monitor_node", "action_inference_node")


def generate_launch_description() -> LaunchDescription:
    config = LaunchConfiguration("config")
    image_topic = LaunchConfiguration("image_topic")
    camera_remappings = [("image_in", image_topic), ("image_in/compressed", [image_topic, "/compressed"])]
    node_parameters = {"monitor_node": [config, {"live_view": LaunchConfiguration("live_view")}]}
    nodes = [Node(package=PACKAGE, executable=executable, name=executable, output="screen",
                  parameters=node_parameters.get(executable, [config]), remappings=camera_remappings)
             for executable in NODES]
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=[FindPackageShare(PACKAGE), "/config/vljepa.yaml"],
                              description="deployment parameters"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image; CompressedImage on .../compressed)"),
        DeclareLaunchArgument("namespace", default_value="vljepa",
                              description="namespace of the nodes and their output topics"),
        DeclareLaunchArgument("live_view", default_value="false",
                              description="the monitor publishes live_view: the camera frame with the newest text, "
                                          "familiarity and shift scores"),
        GroupAction([PushRosNamespace(LaunchConfiguration("namespace")), *nodes]),
    ])
