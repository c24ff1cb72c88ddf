"""Plumbing shared by the node shells: parameters, diagnostics, QoS, conversions, main()."""
from __future__ import annotations

import array
import concurrent.futures
import logging
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

from vljepa_ros.errors import ImageConversionError
from vljepa_ros.nodes.parameter_rules import check_shared_parameter
from vljepa_ros.nodes.spinning import EXECUTORS, executor_option, run_nodes
from vljepa_ros.paths import read_text_lines
from vljepa_ros.runtime import BACKENDS, DEVICES, PRECISIONS
from vljepa_ros.stream.images import decode_compressed, decode_image

# REP-2003: sensor inputs best effort (keep the latest few), outputs reliable.
SENSOR_QOS = qos_profile_sensor_data
OUTPUT_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
# Subscribers of embedding streams keep a deeper history: a burst (a bag replayed fast) must not
# overwrite samples before the callback takes them, as reliable + keep-last would do silently.
STREAM_INPUT_QOS = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
DIAGNOSTICS_TOPIC = "/diagnostics"


def sensor_qos(depth: int) -> QoSProfile:
    """SENSOR_QOS (best effort, keep last) holding `depth` samples instead of 5: a callback that falls
    behind for longer than depth / frame rate loses frames inside DDS, where no counter sees them."""
    return QoSProfile(depth=depth, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=SENSOR_QOS.durability)



# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParameterSpec:
    """A parameter with everything a user needs to set it right; `choices` are enforced on set."""
    name: str
    default: Any
    description: str
    min_value: float | None = None
    max_value: float | None = None
    choices: tuple[str, ...] = ()
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(description=self.description, read_only=self.read_only)
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.min_value is not None or self.max_value is not None:
            low = self.min_value if self.min_value is not None else -1e308
            high = self.max_value if self.max_value is not None else 1e308
            if isinstance(self.default, bool) or not isinstance(self.default, (int, float)):
                raise TypeError(f"range on non-numeric parameter {self.name}")
            if isinstance(self.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(max(low, -2**63)),
                                                         to_value=int(min(high, 2**63 - 1)), step=1)]
            else:
                descriptor.floating_point_range = [FloatingPointRange(from_value=float(low),
                                                                      to_value=float(high), step=0.0)]
        return descriptor


def declare_parameters(node: Node, specs: Sequence[ParameterSpec],
                       extra_check: Callable[[Parameter], str | None] | None = None) -> None:
    """Declare `specs` with descriptors (ROS enforces ranges and read-only) and reject values outside
    `choices`, or failing `extra_check`, with a reason the caller sees."""
    by_name = {spec.name: spec for spec in specs}
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, spec.descriptor())

    def on_set(parameters: list[Parameter]) -> SetParametersResult:
        for parameter in parameters:
            problem = (_check_choice(by_name, parameter) or check_shared_parameter(parameter)
                       or (extra_check(parameter) if extra_check else None))
            if problem:
                return SetParametersResult(successful=False, reason=problem)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def _check_choice(specs: dict[str, ParameterSpec], parameter: Parameter) -> str | None:
    spec = specs.get(parameter.name)
    if spec and spec.choices and parameter.value not in spec.choices:
        return f"{parameter.name}={parameter.value!r} is not one of {', '.join(spec.choices)}"
    return None


def parameter_values(node: Node, specs: Sequence[ParameterSpec]) -> dict[str, Any]:
    """Current values; raises ValueError for a value outside its choices or `check_shared_parameter`'s rules.

    A bad value from a YAML file or the command line cannot be rejected at declaration, so the
    node checks here when it (re)loads, reports the reason and keeps running unconfigured."""
    by_name = {spec.name: spec for spec in specs}
    problems = [problem for spec in specs if (problem := _check_choice(by_name, node.get_parameter(spec.name))
                                              or check_shared_parameter(node.get_parameter(spec.name)))]
    if problems:
        raise ValueError("; ".join(problems))
    return raw_parameter_values(node, specs)


def raw_parameter_values(node: Node, specs: Sequence[ParameterSpec]) -> dict[str, Any]:
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}


# Parameters every model-running node shares.
MODEL_PARAMETERS = (
    ParameterSpec("model_dir", "", "VL-JEPA model directory (empty: the small model shipped with the package); applied on configure"),
    ParameterSpec("backend", "torch", "inference backend; applied on configure", choices=BACKENDS),
    ParameterSpec("device", "cpu", "inference device; applied on configure", choices=DEVICES),
    ParameterSpec("precision", "fp32", "inference precision; applied on configure", choices=PRECISIONS),
    ParameterSpec("engine_cache_dir", "", "ONNX export / TensorRT engine cache (empty: ~/.cache/vljepa_ros); an "
                  "absolute path without '..', of an existing folder or one inside the cache root (README, Security)"),
    ParameterSpec("inference_threads", 1, "CPU threads of the inference engine (0: the backend's default, all cores; "
                  "torch's setting is per process). 1 keeps thread pools of several nodes from stalling each other "
                  "on a small CPU; applied on configure", min_value=0, max_value=256),
)


class BackgroundLoader:
    """Runs a slow load (model, ONNX export, TensorRT build) off the executor, so a node keeps
    spinning, answering services and publishing diagnostics while it loads. When the load ends, a
    guard condition wakes the node's executor, which hands the result to `on_loaded(result)` or
    `on_failed(error)` on the executor thread; nothing polls. Loads run on daemon threads: a
    process that is told to stop never waits for a model it will not use."""

    def __init__(self, node: Node, on_loaded: Callable[[Any], None], on_failed: Callable[[Exception], None]) -> None:
        self._on_loaded, self._on_failed = on_loaded, on_failed
        self._name = f"{node.get_name()}-load"
        self._future: concurrent.futures.Future | None = None
        self._idle = threading.Event()  # set while no load is pending (its result delivered)
        self._idle.set()
        self._closed = False
        self._close_lock = threading.Lock()  # a load ending during close() must not trigger a destroyed guard
        self._finished = node.create_guard_condition(self._deliver)

    @property
    def loading(self) -> bool:
        return not self._idle.is_set()

    def start(self, load: Callable[[], Any]) -> None:
        """Load in the background; a newer start supersedes a load still running (its result is dropped)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._future = future
        self._idle.clear()

        def run() -> None:
            try:
                future.set_result(load())
            except Exception as error:  # delivered to on_failed on the executor thread
                future.set_exception(error)
            with self._close_lock:
                if not self._closed:
                    self._finished.trigger()

        threading.Thread(target=run, name=self._name, daemon=True).start()

    def _deliver(self) -> None:
        future = self._future
        if future is None or not future.done():
            return  # a superseded load ended; the newest one is still running
        self._future = None
        try:
            error = future.exception()
            if error is not None:
                self._on_failed(error)
            else:
                self._on_loaded(future.result())
        finally:
            self._idle.set()

    def wait(self, timeout_s: float | None) -> bool:
        """Block until the current load's result was delivered; True if none is pending."""
        return self._idle.wait(timeout_s)

    def close(self) -> None:
        """Before the node is destroyed: a load that ends later no longer touches it."""
        with self._close_lock:
            self._closed = True


def create_engine_from(values: dict[str, Any], warm_up: bool = True):
    """Build the inference engine the model parameters describe (raises VLJepaError/FileNotFoundError),
    warmed up unless `warm_up` is False (a node that never encodes clips: the monitor)."""
    from vljepa_ros.paths import resolve_model_dir
    from vljepa_ros.runtime import create_engine
    from vljepa_ros.runtime.cache_dir_rules import resolve_cache_dir
    cache_dir = values.get("engine_cache_dir") or None
    engine = create_engine(resolve_model_dir(values["model_dir"]), backend=values["backend"],
                           device=values["device"], precision=values.get("precision", "fp32"),
                           cache_dir=resolve_cache_dir(cache_dir) if cache_dir else None,
                           threads=values.get("inference_threads") or None)
    if warm_up:
        engine.warm_up()  # on the loading thread: the camera's first clips are not the slow ones
    return engine


# ---------------------------------------------------------------------------------------------
# Conversions
# ---------------------------------------------------------------------------------------------
def stamp_to_ns(stamp: Time) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def ns_to_stamp(nanoseconds: int) -> Time:
    return Time(sec=int(nanoseconds // 1_000_000_000), nanosec=int(nanoseconds % 1_000_000_000))


def to_float32_field(values: np.ndarray) -> array.array:
    """float32[] field value; array.array is ~100x faster to assign than a numpy array."""
    return array.array("f", np.ascontiguousarray(values, dtype=np.float32).tobytes())


def from_float32_field(values: Sequence[float]) -> np.ndarray:
    if isinstance(values, array.array):
        return np.frombuffer(values, dtype=np.float32)
    return np.asarray(values, dtype=np.float32)


def _ros2_cv_bridge():
    """ROS 2's cv_bridge on a real ROS install; None otherwise.

    PyPI's `cv-bridge` is a ROS 1 port that mis-converts under numpy 2, so a `cv_bridge` module is
    only trusted when the ament index lists the package (it does on apt/colcon installs)."""
    try:
        from ament_index_python.packages import get_package_share_directory
        get_package_share_directory("cv_bridge")
        from cv_bridge import CvBridge
        return CvBridge()
    except (ImportError, LookupError):  # no ROS 2 cv_bridge here (PackageNotFoundError is a KeyError)
        return None
    except Exception as error:  # listed but broken: numpy conversion still works, so say so and go on
        logging.getLogger(__name__).warning("ROS 2 cv_bridge is installed but unusable (%s); "
                                            "converting images with numpy", error)
        return None


_CV_BRIDGE = _ros2_cv_bridge()


def image_msg_to_rgb(message) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage -> RGB uint8 (H, W, 3); ImageConversionError if it cannot."""
    if hasattr(message, "format"):  # CompressedImage
        return decode_compressed(message.format, bytes(message.data))
    if _CV_BRIDGE is not None:
        try:
            return np.ascontiguousarray(_CV_BRIDGE.imgmsg_to_cv2(message, desired_encoding="rgb8"))
        except Exception as error:
            raise ImageConversionError(f"cv_bridge could not convert a {message.encoding!r} image: {error}") from error
    return decode_image(message.encoding, message.height, message.width, message.step,
                        bytes(message.data), bool(message.is_bigendian))


def check_text_file(name: str, path: str, what: str = "line") -> str | None:
    """Why `path` cannot serve as parameter `name` (a bank of one entry per line), or None if it can:
    it must exist, be readable UTF-8 text and hold at least one non-comment line. Empty: not set."""
    if not path:
        return None
    if not Path(path).is_file():
        return f"{name} {path!r} does not exist (or is not a file)"
    try:
        lines = read_text_lines(path)
    except (OSError, UnicodeDecodeError) as error:
        return f"{name} {path!r} cannot be read: {error}"
    if not lines:
        return f"{name} {path!r} is empty: it needs at least one {what} per line (lines starting with # are comments)"
    return None


# ---------------------------------------------------------------------------------------------
# Diagnostics
# ---------------------------------------------------------------------------------------------
class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        with self._lock:
            self._times.append(time.monotonic())

    def rate_hz(self) -> float:
        with self._lock:
            now = time.monotonic()
            while self._times and now - self._times[0] > self.window_s:
                self._times.popleft()
            return len(self._times) / self.window_s


class LatencyStats:
    """Percentiles of the last N latencies (and, with `max_age_s`, only of those added within that long:
    what the node does now, not minutes ago)."""

    def __init__(self, size: int = 500, max_age_s: float | None = None) -> None:
        self._values: deque[tuple[float, float]] = deque(maxlen=size)  # (monotonic time added, seconds)
        self._max_age_s = max_age_s
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append((time.monotonic(), seconds))

    def percentile_ms(self, q: float) -> float:
        oldest = -float("inf") if self._max_age_s is None else time.monotonic() - self._max_age_s
        with self._lock:
            values = [seconds for added, seconds in self._values if added >= oldest]
        return float(np.percentile(values, q) * 1e3) if values else float("nan")


LOSS_WINDOW_S = 5.0  # a loss counter that rose within this long keeps /diagnostics at WARN
LOSS_LOG_PERIOD_S = 5.0  # at most one log line per cause this often


@dataclass
class _Loss:
    description: str  # what was lost and why, for the log line
    remedy: str  # the parameter (or setting) that fixes it
    count: int = 0
    rises: deque | None = None  # (monotonic time, amount) of recent increases
    last_logged_s: float = -1e18
    unlogged: int = 0


class LossCounters:
    """Named counters of data a node lost or refused; nothing is lost silently.

    `count(name, n, detail)` adds to a counter, and logs (throttled per cause) what was lost, why and
    the parameter that fixes it. `rising()` names the counters that rose within the last `window_s`:
    /diagnostics is at WARN while any does and back to OK once none has for `window_s`, so a single
    bad input never leaves a node at WARN for good. Thread-safe (workers count too)."""

    def __init__(self, node: Node, window_s: float = LOSS_WINDOW_S, log_period_s: float = LOSS_LOG_PERIOD_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = node.get_logger()
        self._clock = clock
        self.window_s, self.log_period_s = window_s, log_period_s
        self._losses: dict[str, _Loss] = {}
        self._lock = threading.Lock()

    def define(self, name: str, description: str, remedy: str) -> None:
        self._losses[name] = _Loss(description, remedy, rises=deque())

    def __getitem__(self, name: str) -> int:
        return self._losses[name].count

    def count(self, name: str, amount: int = 1, detail: str = "") -> None:
        if amount <= 0:
            return
        now = self._clock()
        with self._lock:
            loss = self._losses[name]
            loss.count += amount
            loss.rises.append((now, amount))
            self._expire(loss, now)
            loss.unlogged += amount
            if now - loss.last_logged_s < self.log_period_s:
                return
            amount_logged, loss.unlogged, loss.last_logged_s = loss.unlogged, 0, now
            total = loss.count
        self._logger.warning(f"{name} +{amount_logged} (total {total}): {loss.description}"
                             f"{': ' + detail if detail else ''}; {loss.remedy}")

    def _expire(self, loss: _Loss, now: float) -> None:
        while loss.rises and now - loss.rises[0][0] > self.window_s:
            loss.rises.popleft()

    def rising(self) -> dict[str, int]:
        """name -> how much it rose within the window, for the counters that did."""
        now = self._clock()
        with self._lock:
            recent = {}
            for name, loss in self._losses.items():
                self._expire(loss, now)
                if loss.rises:
                    recent[name] = sum(amount for _, amount in loss.rises)
            return recent

    def values(self) -> dict[str, int]:
        with self._lock:
            return {name: loss.count for name, loss in self._losses.items()}


class Diagnostics:
    """Publishes one DiagnosticStatus for a node on /diagnostics (diagnostic_updater has no wheel).

    `values()` gives the key/values (rate, latency, drops, backend, model id, ...);
    `ok(...)`/`warn(...)`/`error(...)` set the node's state (level and message). With `losses`, the
    level is at least WARN while a loss counter rises, and the message names those counters
    ("active; losing data: images_rejected +3 in 5 s"); it goes back to the state once they stop.
    """

    def __init__(self, node: Node, values: Callable[[], dict[str, Any]], period_s: float = 1.0,
                 losses: LossCounters | None = None, warnings: Callable[[], list[str]] | None = None) -> None:
        self._node = node
        self._values = values
        self.losses = losses
        self._warnings = warnings  # conditions other than losses that hold the level at WARN while they last
        self._publisher = node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, 10)
        self._level = DiagnosticStatus.OK
        self._message = "starting"
        self._lock = threading.Lock()
        node.create_timer(period_s, self.publish)

    def ok(self, message: str) -> None:
        self._set(DiagnosticStatus.OK, message)

    def warn(self, message: str) -> None:
        self._set(DiagnosticStatus.WARN, message)

    def error(self, message: str) -> None:
        self._set(DiagnosticStatus.ERROR, message)

    def _set(self, level: bytes, message: str) -> None:
        with self._lock:
            self._level, self._message = level, message

    def publish(self) -> None:
        with self._lock:
            level, message = self._level, self._message
        rising = self.losses.rising() if self.losses is not None else {}
        if rising:
            if level < DiagnosticStatus.WARN:
                level = DiagnosticStatus.WARN
            message += "; losing data: " + ", ".join(
                f"{name} +{amount} in {self.losses.window_s:g} s" for name, amount in rising.items())
        for warning in (self._warnings() if self._warnings is not None else []):
            level = max(level, DiagnosticStatus.WARN)
            message += "; " + warning
        status = DiagnosticStatus(level=level, name=f"{self._node.get_fully_qualified_name()}",
                                  message=message, hardware_id=self._node.get_name())
        status.values = [KeyValue(key=key, value=_format_value(value)) for key, value in self._values().items()]
        array_msg = DiagnosticArray(status=[status])
        array_msg.header.stamp = self._node.get_clock().now().to_msg()
        self._publisher.publish(array_msg)


def _format_value(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------
# Process entry
# ---------------------------------------------------------------------------------------------
def print_node_help(node_factory: Callable[[], Node], parameters: Sequence[ParameterSpec]) -> None:
    module = sys.modules[node_factory.__module__]
    print((module.__doc__ or "").strip() + f"\n\nOptions:\n  --executor {{{','.join(EXECUTORS)}}}: one single-threaded "
          "executor for the node (default) or rclpy's multi-threaded one"
          "\n\nParameters (set with --ros-args -p NAME:=VALUE or a YAML file):")
    for spec in parameters:
        constraint = f" [{spec.descriptor().additional_constraints}]" if spec.choices else ""
        print(f"  {spec.name} (default {spec.default!r}){constraint}: {spec.description}")


def run_node(node_factory: Callable[[], Node], args: list[str] | None = None,
             parameters: Sequence[ParameterSpec] = ()) -> int:
    """A node executable's main: `--help`, `--executor single|multi`, then spin until SIGINT/SIGTERM."""
    user_args = rclpy.utilities.remove_ros_args(sys.argv if args is None else args)[1:]
    if {"-h", "--help"} & set(user_args):
        print_node_help(node_factory, parameters)
        return 0
    return run_nodes(lambda: [node_factory()], args, executor_option(user_args))


def stop_process(process: subprocess.Popen, timeout_s: float = 15.0) -> int:
    """Stop a node process as Ctrl-C would (SIGINT, so it shuts down cleanly); kill it if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
