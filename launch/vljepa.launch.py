"""VL-JEPA semantic perception: perception, monitor (selective decoding) and action inference.

The Python twin of vljepa.launch.xml: the same arguments, defaults, namespace, remappings and
parameter file (test/test_launch_testing.py runs it with launch_testing).

    ros2 launch vljepa_ros vljepa.launch.py image_topic:=/camera/image_raw
    ros2 launch vljepa_ros vljepa.launch.py config:=/path/to/my_robot.yaml
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, GroupAction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node, PushRosNamespace
from launch_ros.substitutions import FindPackageShare

PACKAGE = "vljepa_ros"
# (executable, whether it subscribes to the camera), in the order of the XML file.
NODES = (("perception_node", True), ("monitor_node", False), ("action_inference_node", True))


def generate_launch_description() -> LaunchDescription:
    config = LaunchConfiguration("config")
    image_topic = LaunchConfiguration("image_topic")
    camera_remappings = [("image_in", image_topic), ("image_in/compressed", [image_topic, "/compressed"])]
    nodes = [Node(package=PACKAGE, executable=executable, name=executable, output="screen",
                  parameters=[config], remappings=camera_remappings if camera else [])
             for executable, camera in NODES]
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=[FindPackageShare(PACKAGE), "/config/vljepa.yaml"],
                              description="deployment parameters"),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw",
                              description="camera topic (sensor_msgs/Image; CompressedImage on .../compressed)"),
        DeclareLaunchArgument("namespace", default_value="vljepa",
                              description="namespace of the nodes and their output topics"),
        GroupAction([PushRosNamespace(LaunchConfiguration("namespace")), *nodes]),
    ])
