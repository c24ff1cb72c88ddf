"""Thin rclpy shells over the ROS-free core. The only subpackage that imports rclpy."""
