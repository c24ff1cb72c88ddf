"""ROS-free algorithms on frame and embedding streams.

Each module is a plain class or function over numpy that unit tests drive without middleware;
the rclpy nodes call into them once per message.
"""
