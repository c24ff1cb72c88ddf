"""Where rclpy 7 (Jazzy) and rclpy 9 (Kilted) differ for this package, one code path for both.

Compared on the PyPI wheels (ros-jazzy-rclpy 7.1.6, ros-rclpy 9.1.2): executors, lifecycle nodes,
`rclpy.init(signal_handler_options=...)`, `SubscriptionEventCallbacks` (and its `message_lost` event, whose
status has `total_count` / `total_count_change` on both) and two-argument subscription callbacks with a
MessageInfo work alike. What the nodes use and differs:

- MessageInfo: rclpy 9 gives the sending publisher's GID (`publisher_gid`), rclpy 7 does not.
  `PublisherIdentifier` names the publisher from whichever the running rclpy gives.
- Lifecycle: asked for a transition its current state does not offer (`activate` before `configure`),
  rclpy 9's LifecycleNode answers failure; rclpy 7's lets rcl's error escape the `change_state` service
  callback, so the caller gets no answer at all. `LifecycleNode` answers failure on both.

Not used here, and only in rclpy 9: `with rclpy.init():`, timer callbacks taking a TimerInfo,
`Executor.create_future`, content-filtered subscriptions.
"""
from __future__ import annotations

from collections.abc import Mapping

import rclpy.lifecycle
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import TransitionCallbackReturn


class PublisherIdentifier:
    """Names the publisher of each received message from rclpy's MessageInfo (a dict).

    With a GID (rclpy 9) the name is the GID. Without one (rclpy 7) a new publisher is recognised when
    the DDS publication sequence number starts over: a restarted node's new writer counts from 1 again.
    That finds a restarted publisher, which is what the monitor reports; two publishers sending at the
    same time cannot be told apart there (each switch between them reads as a new publisher).
    """

    def __init__(self) -> None:
        self._generation = 0
        self._last_publication: int | None = None

    def __call__(self, info: Mapping | None) -> str:
        info = info or {}
        gid = info.get("publisher_gid")
        if gid is not None:
            data = gid.get("data", b"") if isinstance(gid, Mapping) else gid
            return "gid:" + bytes(data).hex()
        publication = info.get("publication_sequence_number")
        if publication is not None:
            if self._last_publication is not None and publication <= self._last_publication:
                self._generation += 1
            self._last_publication = publication
        return f"publisher #{self._generation} (no GID from this rclpy)"


class LifecycleNode(rclpy.lifecycle.LifecycleNode):
    """rclpy's LifecycleNode, refusing a transition the current state does not offer with ERROR (the
    `change_state` service answers success=False, the state stays) on rclpy 7 as rclpy 9 does.

    rclpy routes the service and `trigger_*()` through the mixin's private `__change_state`; rclpy 9
    catches rcl's error in there, rclpy 7 does not. The override sits on that name (test_ros_distributions
    checks that rclpy still has it)."""

    def _LifecycleNodeMixin__change_state(self, transition_id: int) -> TransitionCallbackReturn:
        try:
            return super()._LifecycleNodeMixin__change_state(transition_id)
        except _rclpy.RCLError as error:  # rclpy 7: the state machine has no such transition from here
            state = self._state_machine.current_state
            self.get_logger().error(f"transition {transition_id} is not available in state '{state[1]}': {error}")
            return TransitionCallbackReturn.ERROR
