"""How a vljepa_ros process runs its nodes: executors, threads, signals and shutdown.

Threads of a node process (see the README's "Runtime design"):
  * one executor thread per node (`executor="single"`, the default): a SingleThreadedExecutor that
    only moves messages: it takes a message, runs a short callback (decode an image, push it into a
    clip, hand work to a worker) and goes back to waiting in rcl, with the GIL released. Each node
    has its own, so a service call that blocks one node (`rank_actions`, `~/flush`) never delays
    another node's images in the single-process bring-up. A node may ask for more threads (EXECUTOR_THREADS,
    its callback groups then run in parallel); none does now: a second thread costs a node at 30 Hz ~7% of a core.
  * the nodes' own workers (inference, decoding, model loading), woken by condition variables,
    queues and guard conditions; nothing polls.
  * the main thread, which does nothing but wait for SIGINT/SIGTERM (or a spinning thread ending).

`executor="multi"` runs every node on one rclpy MultiThreadedExecutor instead (the previous design;
kept to compare). rclpy's experimental EventsExecutor (kilted wheels 9.1.2) was tried and is not
offered: it refuses guard conditions ("Guard conditions not supported"), its timers did not fire
under `spin()`, and `shutdown()` from another thread deadlocked.

Signals: a process started in the background by a non-interactive shell inherits SIGINT as ignored,
and Python then installs no KeyboardInterrupt handler, so the process installs its own SIGINT and
SIGTERM handlers whatever it inherited. The first signal starts an orderly shutdown (the monitor
still publishes its open segment); any further SIGINT/SIGTERM is ignored, so a terminal's Ctrl-C plus
launch's forwarded SIGINT never raise inside the shutdown (a hung shutdown still ends with SIGKILL,
which `ros2 launch` sends after its timeout).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence

import rclpy
from rclpy.duration import Duration
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

EXECUTORS = ("single", "multi")
DEFAULT_EXECUTOR = "single"
MULTI_EXECUTOR_THREADS = 4
SHUTDOWN_TIMEOUT_S = 1.0  # per executor: a callback still running after this is abandoned (daemon thread)
# After the nodes closed, shutdown waits at most this long in all for subscribers to acknowledge what the nodes
# published last (the monitor's flush event, perception's last embedding): publish() only hands a message to
# DDS, and a process that exits right after can take it along.
DELIVERY_TIMEOUT_S = 0.5
# A thread woken to run (the inference worker a finished clip wakes, an executor a frame wakes) waits for the GIL
# until its holder blocks or this interval passes (Python's default: 5 ms, paid on the clip's critical path
# while an executor thread runs rclpy's Python between callbacks). Shorter: more switches, each ~µs.
GIL_SWITCH_INTERVAL_S = 0.0005


class StopRequested(BaseException):
    """Raised in the main thread by the first SIGINT/SIGTERM (a BaseException, like KeyboardInterrupt,
    so that no `except Exception` on the way swallows it)."""


class StopSignals:
    """SIGINT and SIGTERM handlers of our own, installed whatever disposition the process inherited."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def install(self) -> StopSignals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)
        return self

    @property
    def stopping(self) -> bool:
        return bool(self.received)

    def _handle(self, signum: int, frame) -> None:
        self.received.append(signal.Signals(signum).name)
        if len(self.received) == 1:
            raise StopRequested(self.received[0])
        # Later signals (Ctrl-C's SIGINT plus launch's forwarded one, or a SIGTERM after a SIGINT) arrive during
        # the shutdown and are noted, nothing more. Not SIG_IGN here: a signal that reached the C handler just
        # before the switch makes CPython raise "OSError: Signal N ignored due to race condition" in the
        # middle of the shutdown (seen: SIGINT then SIGTERM on the bring-up). ignore_further() switches to
        # SIG_IGN once no shutdown step is left to interrupt.

    @staticmethod
    def ignore_further() -> None:
        """SIG_IGN for both signals, for the last steps before the process ends (a Python handler may not run
        any more there). A signal caught in the switch is one more late signal: ignored, as intended."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                signal.signal(signum, signal.SIG_IGN)
            except OSError:  # CPython's "ignored due to race condition", raised after the switch is made
                pass


def init_ros(args: list[str] | None = None) -> StopSignals:
    """rclpy.init without rclpy's signal handlers (they shut the context down at once, before a node
    could publish its last results), and our own handlers instead."""
    from rclpy.signals import SignalHandlerOptions

    stop_signals = StopSignals().install()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    return stop_signals


def make_executors(nodes: Sequence[Node], kind: str = DEFAULT_EXECUTOR) -> list[Executor]:
    if kind not in EXECUTORS:
        raise ValueError(f"executor {kind!r} is not one of {', '.join(EXECUTORS)}")
    if kind == "multi":
        executor = MultiThreadedExecutor(num_threads=MULTI_EXECUTOR_THREADS, context=nodes[0].context)
        for node in nodes:
            executor.add_node(node)
        return [executor]
    executors = []
    for node in nodes:
        # A node whose service must not hold up its own subscriptions (action inference: rank_actions
        # runs the model) asks for two threads; its callback groups keep them apart.
        threads = getattr(node, "EXECUTOR_THREADS", 1)
        executor = (MultiThreadedExecutor(num_threads=threads, context=node.context) if threads > 1
                    else SingleThreadedExecutor(context=node.context))
        executor.add_node(node)
        executors.append(executor)
    return executors


def spin_nodes(nodes: Sequence[Node], executor: str = DEFAULT_EXECUTOR) -> None:
    """Spin `nodes` on executor threads until SIGINT/SIGTERM (or a spin ends), then shut down in
    order: stop the executors, let each node finish (`close()`: flush, stop workers), wait for the last
    messages to be acknowledged (wait_for_delivery), destroy the nodes, shut rclpy down. Re-raises an exception that ended a spin, after the clean-up."""
    executors = make_executors(nodes, executor)
    spin_ended = threading.Event()
    stopping = threading.Event()
    errors: list[BaseException] = []

    def spin(executor_: Executor) -> None:
        try:
            executor_.spin()
        except ExternalShutdownException:
            pass
        except BaseException as error:  # re-raised in the main thread, after the clean-up
            # ... unless the shutdown had begun: a callback still in flight when the executor is shut down can
            # meet a handle destroyed under it (rclpy InvalidHandle, seen on a bring-up node after SIGINT).
            if not stopping.is_set():
                errors.append(error)
        finally:
            spin_ended.set()

    threads = [threading.Thread(target=spin, args=(executor_,), name=f"executor-{index}", daemon=True)
               for index, executor_ in enumerate(executors)]
    try:
        for thread in threads:
            thread.start()
        spin_ended.wait()  # a blocking lock wait: the signal handler runs and raises StopRequested here
    except StopRequested:
        pass
    finally:
        stopping.set()
        shutdown_nodes(nodes, executors, threads)
    if errors:
        raise errors[0]


def shutdown_nodes(nodes: Sequence[Node], executors: Sequence[Executor],
                   threads: Sequence[threading.Thread]) -> None:
    for executor_ in executors:
        executor_.shutdown(timeout_sec=SHUTDOWN_TIMEOUT_S)
    for thread in threads:
        thread.join(SHUTDOWN_TIMEOUT_S)
    for node in nodes:
        close = getattr(node, "close", None)
        if close is not None:
            close()
    wait_for_delivery(nodes)
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()


def wait_for_delivery(nodes: Sequence[Node], timeout_s: float = DELIVERY_TIMEOUT_S) -> None:
    """Wait, within one shared deadline, until every reliable publisher's messages were acknowledged by its
    subscribers (best-effort ones return at once); log the topics still unacknowledged at the deadline."""
    deadline = time.monotonic() + timeout_s
    for node in nodes:
        late = [publisher.topic_name for publisher in node.publishers
                if not publisher.wait_for_all_acked(Duration(seconds=max(0.0, deadline - time.monotonic())))]
        if late:
            node.get_logger().warning(f"stopping before subscribers acknowledged the last messages on {late} "
                                      f"(waited up to {timeout_s} s in all); a slow subscriber may miss them")


def executor_option(user_args: list[str]) -> str:
    """`--executor single|multi` from a node's non-ROS arguments (others are left alone)."""
    import argparse
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--executor", choices=EXECUTORS, default=DEFAULT_EXECUTOR)
    return parser.parse_known_args(user_args)[0].executor


def run_nodes(factory: Callable[[], Sequence[Node]], args: list[str] | None = None,
              executor: str = DEFAULT_EXECUTOR) -> int:
    """A process's whole life: signal handlers, rclpy.init, the nodes, spin, clean shutdown.
    Exits 0 on SIGINT/SIGTERM, also when the signal came while the nodes were being created."""
    stop_signals = init_ros(args)
    try:
        nodes = factory()
    except StopRequested:  # before any node existed
        rclpy.try_shutdown()
        exit_without_teardown(0)
    except BaseException:
        rclpy.try_shutdown()
        raise
    try:
        if stop_signals.stopping:  # a signal arrived while the factory swallowed it
            shutdown_nodes(nodes, [], [])
        else:
            spin_nodes(nodes, executor)
    except StopRequested:  # arrived between creating the nodes and spinning them
        shutdown_nodes(nodes, [], [])
    exit_without_teardown(0)
    return 0  # not reached


def exit_without_teardown(code: int) -> None:
    """End the process now that the nodes are down and rclpy is shut down. The interpreter's own
    teardown of torch, transformers and the DDS libraries takes 1-1.5 s on 2 cores (measured after
    a 7 ms node shutdown), which would break the promise to stop within 2 s of a signal."""
    StopSignals.ignore_further()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
