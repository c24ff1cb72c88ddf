"""Perception node: camera images -> VL-JEPA semantic embeddings.

Lifecycle: configure loads the model (or engine) and succeeds only once it is loaded (a missing or
corrupt model fails it, with the reason); activate subscribes to the camera and starts publishing,
deactivate stops, cleanup unloads. With `autostart` (default) the model loads in the background
(the executor keeps spinning and /diagnostics says "loading") and the node then configures and
activates itself with it, so `ros2 run` and launch files need no lifecycle manager. An explicit
`configure` (autostart:=false, a lifecycle manager) loads in the transition itself and returns
the truth.

Every embedding says how familiar its clip looks to the model (stream/familiarity.py: `familiarity`,
`in_distribution`) and how sure its best label is (`label_confidence`, `label_margin`); the labels of an
unfamiliar clip are withheld, and /diagnostics is at WARN while most recent clips are unfamiliar.

With `skip_unchanged_clips`, a clip whose frames did not change since the last clip the model ran on
(stream/clip_reuse.py: a pixel test on the inference worker) is not inferred: that clip's embedding, labels
and familiarity are republished with the new clip's stamps and `reused: true`, counted as clips_reused.

Nothing is lost silently: frames lost in transport (gaps in the publisher's sequence numbers, else in
the camera's stamp cadence: nodes/camera_losses.py), clips
replaced by newer ones, rejected images, frames out of order and clip resets (image size change,
clock jump back) are counted on /diagnostics, which is at WARN while any of them rises.

Subscribes `image_in` (sensor_msgs/Image) and `image_in/compressed` (CompressedImage) with
sensor-data QoS; publishes `embedding` (vljepa_ros/SemanticEmbedding, reliable). Image callbacks
only decode and assemble clips; inference runs on a worker thread that keeps the newest clip
(older waiting clips are counted as drops), so the executor never stalls.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from sensor_msgs.msg import CompressedImage, Image

from vljepa_ros.errors import VLJepaError
from vljepa_ros.msg import SemanticEmbedding
from vljepa_ros.nodes.camera_losses import CameraLosses
from vljepa_ros.nodes.common import (MODEL_PARAMETERS, BackgroundLoader, OUTPUT_QOS, Diagnostics,
                                     LatencyStats, LossCounters, ParameterSpec, RateMeter, check_text_file,
                                     create_engine_from,
                                     declare_parameters, image_msg_to_rgb, ns_to_stamp,
                                     parameter_values, run_node, sensor_qos, stamp_to_ns,
                                     to_float32_field)
from vljepa_ros.nodes.rclpy_compat import LifecycleNode
from vljepa_ros.paths import bank_file, read_text_lines, resolve_model_dir
from vljepa_ros.runtime.base import InferenceEngine
from vljepa_ros.stream.clip_assembler import (DEFAULT_SAMPLE_PERIOD_S, DEFAULT_STRIDE_FRAMES, DEFAULT_TIME_JUMP_RESET_S,
                                              Clip, ClipAssembler)
from vljepa_ros.stream.clip_reuse import ClipReuse, ReuseSettings
from vljepa_ros.stream.clips import CAPTION_QUERY
from vljepa_ros.stream.familiarity import FAMILIARITY_FILE, FamiliarityModel, UnfamiliarShare
from vljepa_ros.stream.keep_latest import KeepLatestWorker
from vljepa_ros.stream.label_bank import LabelBank, label_confidence

PARAMETERS = (
    *MODEL_PARAMETERS,
    ParameterSpec("query", CAPTION_QUERY, "text query the predictor answers for each clip (changeable at runtime)"),
    ParameterSpec("frames_per_clip", 0, "camera frames per clip (0: the model's clip length); applied on configure",
                  min_value=0, max_value=256),
    ParameterSpec("stride_frames", DEFAULT_STRIDE_FRAMES, "emit a clip every N sampled frames; applied on configure", min_value=1, max_value=256),
    ParameterSpec("sample_period_s", DEFAULT_SAMPLE_PERIOD_S, "subsample the camera to this period (0: every frame); applied on configure",
                  min_value=0.0, max_value=60.0),
    ParameterSpec("label_bank_file", "", "labels for top-k zero-shot classification, one per line "
                  "(empty: the model's banks/labels.txt if present)"),
    ParameterSpec("time_jump_reset_s", DEFAULT_TIME_JUMP_RESET_S, "a frame stamped this much older than the newest is a jump of the clock "
                  "(bag loop, /clock reset): the clip starts over from it (0: never; such frames are dropped as out of "
                  "order); applied on configure", min_value=0.0, max_value=3600.0),
    ParameterSpec("image_queue_depth", 30, "images the best-effort subscriptions hold while the node is busy "
                  "(sensor-data QoS holds 5); raise it to replay bags fast without losing frames; applied on activate",
                  min_value=1, max_value=10000),
    ParameterSpec("top_k", 3, "labels published with each embedding (0: none)", min_value=0, max_value=100),
    ParameterSpec("familiarity_file", "", "familiarity calibration (empty: the model's familiarity.safetensors if "
                  "present, else no familiarity); `vljepa-ros calibrate` writes it; applied on configure"),
    ParameterSpec("labels_when_unfamiliar", False, "publish top_labels also for clips the model finds unfamiliar "
                  "(they are withheld by default: the nearest label of an unknown scene means nothing)"),
    ParameterSpec("unfamiliar_window_s", 10.0, "/diagnostics reports the share of unfamiliar clips over this window "
                  "and warns while it is over half", min_value=1.0, max_value=3600.0),
    ParameterSpec("skip_unchanged_clips", ReuseSettings.enabled, "do not infer a clip whose frames are unchanged "
                  "from the last inferred clip's: republish its result marked reused (counted as clips_reused); off "
                  "by default: it moved eval's segmentation metrics on paused streams (README, Doing nothing when "
                  "nothing changes)"),
    ParameterSpec("unchanged_threshold", ReuseSettings.threshold, "grey levels (0-255): a clip is unchanged when no "
                  "cell of its frames' 16x16 grey thumbnails moved by more than this since the last inferred clip; "
                  "above camera noise (sigma 2 moves a cell < 3)", min_value=0.0, max_value=255.0),
    ParameterSpec("reuse_max_age_s", ReuseSettings.max_age_s, "infer at least once in this much camera time "
                  "however still the scene (0: no limit)", min_value=0.0, max_value=3600.0),
    ParameterSpec("expected_rate_hz", 0.0, "the camera's frame rate, if known: frames lost in transport are counted "
                  "against it (0: estimated from the stamps)", min_value=0.0, max_value=10000.0, read_only=True),
    ParameterSpec("autostart", True, "configure and activate on start", read_only=True),
)


STATISTICS_WINDOW_S = 10.0  # /diagnostics' latency percentiles are over the clips of this last while
REUSE_PARAMETERS = {"skip_unchanged_clips": "enabled", "unchanged_threshold": "threshold",
                    "reuse_max_age_s": "max_age_s"}  # parameter -> ClipReuse attribute, in its argument order
STOP_TIMEOUT_S = 1.0  # shutdown waits this long for a clip in inference (SIGINT must end the node in < 2 s)


@dataclass
class LoadedModel:
    """What configure installs: the engine and everything that depends on it."""
    engine: InferenceEngine
    label_bank: LabelBank | None
    assembler: ClipAssembler
    familiarity: FamiliarityModel | None  # None: the model has no calibration (messages say familiarity -1)


@dataclass
class PendingClip:
    clip: Clip
    frame_id: str
    received_monotonic_s: float  # when the clip's last frame arrived: latency is measured from here


class PerceptionNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception_node", **kwargs)
        declare_parameters(self, PARAMETERS, extra_check=self._check_parameter)
        self.engine: InferenceEngine | None = None
        self.label_bank: LabelBank | None = None
        self.assembler: ClipAssembler | None = None
        self.familiarity: FamiliarityModel | None = None
        self.worker: KeepLatestWorker[PendingClip] | None = None
        self.publisher = None
        self.subscriptions_: list = []
        self._query = self.get_parameter("query").value
        self._lock = threading.Lock()
        self.state_label = "unconfigured"
        self.activated = False
        self.sequence = 0
        self.inference_failures = 0
        self.images_received = 0
        self.newest_stamp_ns = 0
        self.clips_assembled = 0
        self.rate = RateMeter()
        # Over the last STATISTICS_WINDOW_S: `vljepa-ros bench --pipeline` reads them after each stream.
        self.latency = LatencyStats(max_age_s=STATISTICS_WINDOW_S)  # last frame received -> embedding published
        # The engine call alone: latency minus it is the node's own cost.
        self.inference_latency = LatencyStats(max_age_s=STATISTICS_WINDOW_S)
        self.losses = LossCounters(self)
        jump_s = float(self.get_parameter("time_jump_reset_s").value)
        self.camera = CameraLosses(self, self.losses, float(self.get_parameter("expected_rate_hz").value), jump_s)
        self.losses.define("clips_dropped", "clips replaced by newer ones before inference took them",
                           "inference is slower than clips arrive: raise stride_frames or sample_period_s, or use a "
                           "faster backend/device")
        self.losses.define("images_rejected", "images that could not be decoded",
                           "publish a supported encoding (rgb8, bgr8, rgba8, bgra8, mono8, mono16) with matching "
                           "size/step, or a valid JPEG/PNG")
        self.losses.define("frames_out_of_order", "frames not newer than the previous one, dropped",
                           "stamps must increase; a jump back of more than time_jump_reset_s restarts the clip instead")
        self.losses.define("clip_resets_image_size", "the image size changed: the clip being assembled was discarded",
                           "publish one image size per camera topic")
        self.losses.define("clip_resets_time_jump", "the clock jumped back (bag loop, /clock reset): the clip being "
                           "assembled was discarded and a new one started", "expected on a bag loop; "
                           "time_jump_reset_s sets the threshold")
        self._jump_ns = int(jump_s * 1e9)
        self.unfamiliar = UnfamiliarShare(float(self.get_parameter("unfamiliar_window_s").value))
        self.reuse = ClipReuse(*(self.get_parameter(name).value for name in REUSE_PARAMETERS))
        self.labels_withheld = 0
        self.diagnostics = Diagnostics(self, self._diagnostic_values, losses=self.losses, warnings=self._warnings)
        self.loader = BackgroundLoader(self, self._on_loaded, self._on_load_failed)
        self._preloaded: LoadedModel | None = None  # autostart: the model the background load produced
        self.images_while_loading = 0
        self.add_post_set_parameters_callback(self._after_set_parameters)
        if self.get_parameter("autostart").value:
            self._autostart()

    # -- parameters ---------------------------------------------------------------------------
    def _check_parameter(self, parameter: Parameter) -> str | None:
        if parameter.name == "label_bank_file":
            return check_text_file("label_bank_file", str(parameter.value), "label")
        if parameter.name == "familiarity_file" and parameter.value:
            try:
                FamiliarityModel.load(str(parameter.value))
            except VLJepaError as error:
                return str(error)
        return None

    def _after_set_parameters(self, parameters: list[Parameter]) -> None:
        for parameter in parameters:
            if parameter.name == "query":
                self._query = parameter.value
                self.get_logger().info(f"query is now {parameter.value!r}")
            elif parameter.name == "unfamiliar_window_s":
                self.unfamiliar.window_s = float(parameter.value)
            elif parameter.name in REUSE_PARAMETERS:  # the worker's next clip is checked with it
                setattr(self.reuse, REUSE_PARAMETERS[parameter.name], parameter.value)

    # -- lifecycle ----------------------------------------------------------------------------
    def _autostart(self) -> None:
        """Load the model off the executor (an ONNX export or a TensorRT build can take minutes), then
        configure and activate with it (`_on_loaded`); /diagnostics says "loading" meanwhile."""
        try:
            values = parameter_values(self, PARAMETERS)
        except ValueError as error:
            self._report_configure_failure(error)
            return
        self.state_label = "loading"
        self.diagnostics.warn("loading the model")
        self.loader.start(lambda: self._load(values))

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """SUCCESS only with the model loaded. Autostart hands over the model its background load
        produced; an explicit configure loads it here, so the caller learns whether it worked."""
        loaded, self._preloaded = self._preloaded, None
        if loaded is None:
            self.state_label = "configuring"
            self.diagnostics.warn("configuring: loading the model")
            try:
                loaded = self._load(parameter_values(self, PARAMETERS))
            except Exception as error:  # missing/corrupt model, bad parameter, empty bank: reported, not raised
                self._report_configure_failure(error)
                return TransitionCallbackReturn.FAILURE
        self.publisher = self.create_lifecycle_publisher(SemanticEmbedding, "embedding", OUTPUT_QOS)
        with self._lock:
            self.engine, self.label_bank, self.assembler = loaded.engine, loaded.label_bank, loaded.assembler
            self.familiarity = loaded.familiarity
            self.reuse.reset()  # an embedding of the previous model or calibration is never reused
            self._jump_ns = self.assembler.max_backward_jump_ns  # time_jump_reset_s, applied on configure
            self.camera.set_max_backward_jump_s(self._jump_ns / 1e9)
        self.state_label = "inactive"
        familiarity = (f"familiarity calibrated at a {self.familiarity.false_alarm_rate:g} false-alarm rate"
                       if self.familiarity else "no familiarity calibration (run `vljepa-ros calibrate`)")
        self.get_logger().info(
            f"model {self.engine.model_id} loaded on {self.engine.backend}/{self.engine.device}: "
            f"{self.assembler.frames_per_clip} frames per clip, stride {self.assembler.stride_frames}, "
            f"label bank {len(self.label_bank) if self.label_bank else 0}, {familiarity}")
        self.diagnostics.warn("inactive")
        return TransitionCallbackReturn.SUCCESS

    def _load(self, values: dict) -> LoadedModel:
        """Runs on the loader thread (autostart) or in the configure transition."""
        engine = create_engine_from(values)
        label_bank = self._load_label_bank(values, engine)
        frames_per_clip = values["frames_per_clip"] or engine.frames_per_clip
        # Each frame is shrunk as it arrives, as the engine would shrink it (bit-identical): a clip that is due
        # then only needs its last frame shrunk, not all of them (8 x 640x480: 20 ms of one core).
        assembler = ClipAssembler(frames_per_clip, values["stride_frames"], values["sample_period_s"],
                                  max_backward_jump_s=values["time_jump_reset_s"], prepare_frame=engine.shrink_frame)
        return LoadedModel(engine, label_bank, assembler, self._load_familiarity(values, engine))

    @staticmethod
    def _load_familiarity(values: dict, engine: InferenceEngine) -> FamiliarityModel | None:
        """The calibration named by familiarity_file, else the model's own if it has one."""
        path = values["familiarity_file"] or resolve_model_dir(values["model_dir"]) / FAMILIARITY_FILE
        if not values["familiarity_file"] and not path.is_file():
            return None
        familiarity = FamiliarityModel.load(path)
        if familiarity.dimension != engine.statistics_dimension:
            raise VLJepaError(f"{path} was calibrated for visual statistics of {familiarity.dimension} values, "
                              f"the model gives {engine.statistics_dimension}: re-run `vljepa-ros calibrate`")
        return familiarity

    def _on_loaded(self, loaded: LoadedModel) -> None:
        """Executor thread: the autostart load is done; configure and activate with it."""
        if self.state_label != "loading":  # configured (or failed) explicitly meanwhile: this load is stale
            self.get_logger().info("background model load finished after an explicit transition: discarded")
            return
        self._preloaded = loaded
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()
        self._preloaded = None

    def _on_load_failed(self, error: Exception) -> None:
        if self.state_label != "loading":
            return
        self._report_configure_failure(error)  # stays unconfigured: configure again after fixing a parameter

    def _report_configure_failure(self, error: Exception) -> None:
        self.state_label = "unconfigured"
        self.get_logger().error(f"configure failed: {error}")
        self.diagnostics.error(f"configure failed: {error}")

    def _load_label_bank(self, values: dict, engine) -> LabelBank | None:
        if values["top_k"] == 0:
            return None
        path = values["label_bank_file"] or bank_file(resolve_model_dir(values["model_dir"]), "labels")
        if not values["label_bank_file"] and not path.is_file():
            return None
        return LabelBank.from_texts(read_text_lines(path), engine.encode_texts)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.engine is None:  # the state machine allows activate only after configure; be sure anyway
            self.get_logger().error("activate refused: the node is not configured (no model loaded)")
            return TransitionCallbackReturn.FAILURE
        self.worker = KeepLatestWorker(self._infer, name="perception-inference", on_error=self._on_inference_error,
                                       on_drop=lambda: self.losses.count("clips_dropped"))
        image_qos = sensor_qos(int(self.get_parameter("image_queue_depth").value))
        self.subscriptions_ = [
            self.camera.subscribe(Image, "image_in", self._on_image, image_qos),
            self.camera.subscribe(CompressedImage, "image_in/compressed", self._on_image, image_qos),
        ]
        self.activated = True
        self.state_label = "active"
        self.diagnostics.ok("active")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activated = False
        self._stop_processing()
        self.state_label = "inactive"
        self.diagnostics.warn("inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.state_label = "unconfigured"
        self.diagnostics.warn("unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_processing()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _stop_processing(self) -> None:
        for subscription in self.subscriptions_:
            self.destroy_subscription(subscription)
        self.subscriptions_ = []
        if self.worker is not None:
            self.worker.wait_idle(STOP_TIMEOUT_S)  # let the clip in inference publish
            self.worker.stop(STOP_TIMEOUT_S)
            self.worker = None

    def _release(self) -> None:
        if self.publisher is not None:
            self.destroy_lifecycle_publisher(self.publisher)
            self.publisher = None
        self.engine = self.label_bank = self.assembler = self.familiarity = None

    def close(self) -> None:
        """Stop the worker threads before the node is destroyed (SIGINT/SIGTERM path)."""
        self._stop_processing()
        self.loader.close()

    # -- data path ----------------------------------------------------------------------------
    def _on_image(self, message: Image | CompressedImage) -> None:
        """Executor thread: count gaps in the stamp cadence, decode and shrink the image (only if the clip
        assembler samples it) and push it; a finished clip goes to the inference worker. Nothing here
        waits for the model."""
        received = time.monotonic()
        self.images_received += 1
        stamp_ns = stamp_to_ns(message.header.stamp)
        newest = self.newest_stamp_ns
        if newest and stamp_ns <= newest and not (self._jump_ns and newest - stamp_ns > self._jump_ns):
            # Counted here, configured or not, so that the books (received = new frames + out of order) close.
            self.losses.count("frames_out_of_order", 1, f"stamp {stamp_ns / 1e9:.3f} s, newest {newest / 1e9:.3f} s")
            return
        with self._lock:  # the assembler is replaced on (re)configure
            assembler = self.assembler
            if assembler is None:
                self.newest_stamp_ns = stamp_ns
                self.images_while_loading += 1
                return
            before = (assembler.dropped_out_of_order, assembler.resolution_resets, assembler.time_jump_resets)
            try:
                clip = assembler.push_lazy(lambda: image_msg_to_rgb(message), stamp_ns)
            except VLJepaError as error:  # the frame is as good as never received: newest_stamp_ns stays
                self.losses.count("images_rejected", 1, str(error))
                return
            else:
                self.newest_stamp_ns = stamp_ns  # newest, or the first after a jump of the clock back
            finally:
                out_of_order, resized, jumped = (after - first for after, first in zip(
                    (assembler.dropped_out_of_order, assembler.resolution_resets, assembler.time_jump_resets), before))
            if clip is not None:
                self.clips_assembled += 1
        self.losses.count("frames_out_of_order", out_of_order, f"stamp {stamp_ns / 1e9:.3f} s")
        if resized:
            self.losses.count("clip_resets_image_size", 1, f"now {message.width}x{message.height}"
                              if hasattr(message, "width") else "compressed image of a new size")
        if jumped:
            self.losses.count("clip_resets_time_jump", 1, f"new stamp {stamp_ns / 1e9:.3f} s")
        if clip is not None and self.worker is not None:
            self.worker.submit(PendingClip(clip, message.header.frame_id, received))

    def _infer(self, pending: PendingClip) -> None:
        engine, publisher, query = self.engine, self.publisher, self._query
        if engine is None or publisher is None:
            return
        check = self.reuse.check(pending.clip.frames, pending.clip.last_stamp_ns, (engine.model_id, query))
        if check.reuse:  # the frames did not change: the last inferred clip's embedding and familiarity
            embedding, familiarity = check.payload
        else:
            started = time.monotonic()
            embeddings, statistics = engine.encode_clips_with_statistics(pending.clip.frames[None], query)
            embedding = embeddings[0]
            self.inference_latency.add(time.monotonic() - started)
            familiarity = self.familiarity.score(statistics[0]) if self.familiarity is not None else None
            self.reuse.remember(check, (embedding, familiarity))
        message = SemanticEmbedding()
        message.reused = check.reuse
        message.header.stamp = ns_to_stamp(pending.clip.last_stamp_ns)
        message.header.frame_id = pending.frame_id
        message.clip_start = ns_to_stamp(pending.clip.first_stamp_ns)
        message.clip_end = ns_to_stamp(pending.clip.last_stamp_ns)
        message.frames_in_clip = pending.clip.frame_count
        message.model_id = engine.model_id
        message.backend = engine.backend
        message.query = query
        message.dimension = int(embedding.shape[0])
        message.embedding = to_float32_field(embedding)
        if familiarity is not None:  # else the message's defaults say "not computed"
            message.familiarity, message.familiarity_threshold = familiarity.familiarity, familiarity.threshold
            message.in_distribution = familiarity.in_distribution
            self.unfamiliar.add(time.monotonic(), familiarity.in_distribution)
        self._add_labels(message, embedding, engine)
        message.sequence = self.sequence
        self.sequence += 1
        publisher.publish(message)
        self.rate.tick()
        self.latency.add(time.monotonic() - pending.received_monotonic_s)

    def _add_labels(self, message: SemanticEmbedding, embedding, engine: InferenceEngine) -> None:
        """top_labels/top_scores and the label confidence; an unfamiliar clip's labels are withheld."""
        bank = self.label_bank
        if bank is None:  # the message's defaults say "no bank"
            return
        confidence = label_confidence(bank.scores(embedding), engine.config.temperature)
        message.label_confidence, message.label_margin = confidence.probability, confidence.margin
        if not message.in_distribution and not self.get_parameter("labels_when_unfamiliar").value:
            self.labels_withheld += 1
            return
        top = bank.top_k(embedding, self.get_parameter("top_k").value)
        message.top_labels = [label for label, _ in top]
        message.top_scores = [float(score) for _, score in top]

    def _warnings(self) -> list[str]:
        warning = self.unfamiliar.warning(time.monotonic())
        return [warning] if warning and self.state_label == "active" else []

    def _on_inference_error(self, pending: PendingClip, error: Exception) -> None:
        self.inference_failures += 1
        self.get_logger().error(f"inference failed: {error!r}", throttle_duration_sec=5.0)
        self.diagnostics.error(f"inference failed: {error}")

    def _diagnostic_values(self) -> dict:
        engine = self.engine
        losses = self.losses.values()
        return {
            "state": self.state_label,
            "rate_hz": self.rate.rate_hz(),
            "latency_p50_ms": self.latency.percentile_ms(50),
            "latency_p95_ms": self.latency.percentile_ms(95),
            "inference_p50_ms": self.inference_latency.percentile_ms(50),
            "inference_p95_ms": self.inference_latency.percentile_ms(95),
            "images_received": self.images_received,
            "newest_stamp_ns": self.newest_stamp_ns,
            "images_while_loading": self.images_while_loading,
            **losses,
            **self.camera.values(),
            "clips_assembled": self.clips_assembled,
            "inference_failures": self.inference_failures,
            "embeddings_published": self.sequence,
            "skip_unchanged_clips": self.reuse.enabled,
            "clips_reused": self.reuse.clips_reused,  # not a loss: published, embedding of an unchanged clip
            "clip_change_grey": self.reuse.last_change,  # the latest clip's change (inf: not compared)
            "familiarity_calibrated": self.familiarity is not None,
            "unfamiliar_share": self.unfamiliar.share(time.monotonic()),
            "clips_unfamiliar": self.unfamiliar.clips_unfamiliar,
            "labels_withheld": self.labels_withheld,
            "backend": engine.backend if engine else "",
            "model_id": engine.model_id if engine else "",
            "query": self._query,
        }


def main(args: list[str] | None = None) -> int:
    return run_node(PerceptionNode, args, PARAMETERS)


if __name__ == "__main__":
    raise SystemExit(main())
