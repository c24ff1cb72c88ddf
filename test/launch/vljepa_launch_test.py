"""launch_testing integration test of launch/vljepa.launch.py: the three nodes it starts turn a replayed
bag into embeddings, events and action hypotheses in their namespace, and all exit cleanly when launch
shuts them down.

The ROS-standard form (what ament_cmake's `add_launch_test()` runs under `colcon test`): launch_testing's
own runner, `launch_test`, with the launch file's arguments on its command line, e.g.

    launch_test test/launch/vljepa_launch_test.py namespace:=robot1 config:=/path/to/my_robot.yaml

test/test_launch_testing.py runs it so under pytest (launch_testing's pytest plugin is blocked in
pytest.ini: its hooks take py.path arguments, which pytest 9 refuses). Not named test_*.py, so pytest
does not collect it itself.
"""
import time
import unittest
from pathlib import Path

import launch_testing
import launch_testing.actions
import launch_testing.asserts
import pytest
from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource

LAUNCH_FILE = Path(__file__).resolve().parents[2] / "launch" / "vljepa.launch.py"
EXECUTABLES = ("perception_node", "monitor_node", "action_inference_node")
OUTPUT_DEADLINE_S = 180.0  # the nodes import torch and load their models meanwhile, three at once on 2 cores


@pytest.mark.launch_test
def generate_test_description():
    # The launch file's own arguments (config, image_topic, namespace) come from launch_test's command line.
    return LaunchDescription([
        IncludeLaunchDescription(PythonLaunchDescriptionSource(str(LAUNCH_FILE))),
        launch_testing.actions.ReadyToTest(),
    ])


class TestBagThroughTheLaunchedNodes(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        cls.context = Context()
        rclpy.init(context=cls.context)
        cls.node = rclpy.create_node("launch_test_observer", context=cls.context)
        cls.executor = SingleThreadedExecutor(context=cls.context)
        cls.executor.add_node(cls.node)

    @classmethod
    def tearDownClass(cls):
        import rclpy

        cls.executor.shutdown()
        cls.node.destroy_node()
        rclpy.try_shutdown(context=cls.context)

    def test_replayed_bag_gives_embeddings_events_and_hypotheses(self, test_args, proc_info):
        from vljepa_ros.msg import ActionHypotheses, SemanticEmbedding, SemanticEvent
        from vljepa_ros.nodes.bag_replay import BagReplayer
        from vljepa_ros.paths import find_share_file

        namespace = "/" + test_args.get("namespace", "vljepa").strip("/")
        camera = test_args.get("image_topic", "/camera/image_raw")
        received = {"embedding": [], "event": [], "action_hypotheses": []}
        for topic, message_type in (("embedding", SemanticEmbedding), ("event", SemanticEvent),
                                    ("action_hypotheses", ActionHypotheses)):
            self.node.create_subscription(message_type, f"{namespace}/{topic}", received[topic].append, 100)
        # The demo bag (CompressedImage) onto the launch's camera topic, in a loop until the outputs came.
        replayer = BagReplayer(self.node, find_share_file("data/demo_tabletop"), output_topic=f"{camera}/compressed",
                               loop=True, restamp=True)
        replayer.start()
        deadline = time.monotonic() + OUTPUT_DEADLINE_S
        try:
            while not all(received.values()) and time.monotonic() < deadline:
                exited = [info.process_name for info in proc_info if getattr(info, "returncode", None) is not None]
                self.assertEqual(exited, [], "a launched node exited")  # fail at once, not at the deadline
                self.executor.spin_once(timeout_sec=0.1)
        finally:
            replayer.stop()
            replayer.wait(10.0)
        self.assertTrue(all(received.values()), {topic: len(messages) for topic, messages in received.items()})
        embedding = received["embedding"][0]
        self.assertEqual(embedding.dimension, len(embedding.embedding))
        self.assertTrue(embedding.model_id)
        self.assertEqual(received["event"][0].model_id, embedding.model_id)
        self.assertTrue(received["event"][0].text)
        self.assertEqual(received["action_hypotheses"][0].model_id, embedding.model_id)


@launch_testing.post_shutdown_test()
class TestEveryNodeExitsCleanly(unittest.TestCase):

    def test_exit_codes(self, proc_info, proc_output):
        launch_testing.asserts.assertExitCodes(proc_info)  # 0 for every process launch started
        names = [name.rsplit("-", 1)[0] for name in proc_info.process_names()]
        self.assertEqual(sorted(names), sorted(EXECUTABLES))
        for process in proc_output.processes():
            text = "".join(output.text.decode(errors="replace") for output in proc_output[process])
            self.assertNotIn("Traceback", text, process.process_details["name"])
