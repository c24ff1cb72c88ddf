"""Rendered robot world: Meta-World (MT50) tasks solved by their scripted experts, rendered offscreen with MuJoCo.

Runs inside the optional environment .venv-metaworld (scripts/setup_metaworld_env.sh), because metaworld 3.1.1 pins
mujoco==3.3.0. The module imports only numpy at the top, so the main environment can import it (the .npz reader)
without MuJoCo; the world's language lives in metaworld_tasks.py. Everything downstream reads the bags it writes.

A stream is a sequence of episodes of different tasks (hard cut between episodes: the meaning changes at known
times). Every episode is split into phases that tile it:

  grasp tasks   (pick-place, bin-picking):   reach -> grasp -> move -> release
  contact tasks (drawers, doors, windows, ...):  reach -> act (pull/push/press/turn) -> retreat

How phases are derived (Meta-World's experts are stateless functions of the observation, so there is no internal
state to read; we use what they expose, their action, plus the simulator's object pose and success flag):
  reach -> grasp   the expert's gripper command turns to "close" (action[3] > 0): its own decision to grasp.
  grasp -> move    the object has moved more than OBJECT_MOVED_M from where it rested (it is lifted / carried).
  reach -> act     (contact tasks) the object (handle, button, ...) has moved more than OBJECT_MOVED_M: contact.
  -> release / retreat   the environment reports success; a scripted tail then opens the gripper and moves the
                   hand back home for TAIL_STEPS control steps (the experts never let go, so this is ours).
An episode whose phases do not all appear with at least MIN_PHASE_FRAMES frames, or whose expert does not succeed
within MAX_EXPERT_STEPS, is discarded and re-drawn with the next episode seed (counted in the render report).

Timing: Meta-World controls at 80 Hz (env.dt = 0.0125 s); the stream keeps every 8th state (10 Hz). The experts
move the hand up to 1 cm per step (0.8 m/s), so an episode would last well under a second; we scale their motion
command by ARM_SPEED (0.25, i.e. <= 0.2 m/s, a realistic arm speed) so that phases last seconds. Tasks whose
expert still succeeds at that speed (and whose phases are visible) are listed in TASKS; others, e.g. push-v3 and
basketball-v3, fail when slowed, and in door-close-v3 / coffee-button-v3 the object moves before or too little for
the contact rule. pick-place-v3 runs at 0.35 (its expert misses the puck more often at 0.25).

Usage (inside .venv-metaworld, from the repository root):
  .venv-metaworld/bin/python -m vljepa_ros.world.metaworld_render --bag data/metaworld/eval --seed 1000000 --episodes 28
  (scripts/render_metaworld.sh renders the committed eval bag and the git-ignored training stream.)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vljepa_ros.world.metaworld_tasks import TASKS, TaskSpec, label_bank, phase_question_answers
from vljepa_ros.world.types import BASE_STAMP_NS, HELD_OUT_SEED_START, ActionItem, Segment, WorldDataError, WorldStream

CONTROL_DT_S = 0.0125  # Meta-World's env.dt (80 Hz)
STEPS_PER_FRAME = 8  # 80 Hz control -> 10 Hz stream
DEFAULT_FPS = 1.0 / (CONTROL_DT_S * STEPS_PER_FRAME)
DEFAULT_IMAGE_SIZE = 128
MAX_EXPERT_STEPS = 1200  # 15 s: an expert that has not succeeded by then has failed
TAIL_STEPS = 64  # 0.8 s of release / retreat after success
TAIL_HOLD_STEPS = 16  # of which the first 0.2 s only opens the gripper
OBJECT_MOVED_M = 0.012
MIN_PHASE_FRAMES = 2
MAX_ATTEMPTS_PER_EPISODE = 6
# Software (Mesa llvmpipe) rendering cost is dominated by shadows and multisampling: MuJoCo's defaults (4096 shadow
# map, 4x MSAA) take ~125 ms a 128 px frame here, a 512 shadow map without MSAA ~40 ms (no shadows ~17 ms).
SHADOW_MAP_SIZE = 512
MSAA_SAMPLES = 0  # downscaling 128 px to the model's 64 px anti-aliases anyway
# A fixed free camera in front of the table, looking past the arm at the workspace (the built-in corner cameras
# render upside down and show mostly the robot base).
CAMERA_LOOKAT = (0.05, 0.65, 0.1)
CAMERA_AZIMUTH_DEG = 200.0
CAMERA_ELEVATION_DEG = -45.0
CAMERA_DISTANCE_M = 1.15



@dataclass
class EpisodeRender:
    """One rendered episode: frames at 10 Hz and the phase of each frame."""

    env_name: str
    episode_seed: int
    frames: np.ndarray  # uint8 (n,H,W,3)
    phases: list[str]  # phase key per frame
    expert_steps: int  # control steps until success


def episode_seed(stream_seed: int, episode_index: int, attempt: int) -> int:
    """Seed of one episode attempt; distinct streams never share an episode. < 2**32 (np.random.seed)."""
    return int(np.random.SeedSequence([stream_seed, episode_index, attempt]).generate_state(1)[0])


def choose_gl_backend() -> str:
    """MUJOCO_GL if set, else EGL when a tiny offscreen render works in a child process, else OSMesa.

    Probed in a child because MuJoCo binds its GL backend at import time and cannot switch afterwards.
    """
    if os.environ.get("MUJOCO_GL"):
        return os.environ["MUJOCO_GL"]
    probe = "import mujoco; r = mujoco.Renderer(mujoco.MjModel.from_xml_string('<mujoco/>'), 8, 8); r.render(); r.close()"
    errors = []
    for backend in ("egl", "osmesa"):
        env = dict(os.environ, MUJOCO_GL=backend, PYOPENGL_PLATFORM=backend)
        result = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
        if result.returncode == 0:
            return backend
        errors.append(f"{backend}: {result.stderr.strip().splitlines()[-1] if result.stderr.strip() else result.returncode}")
    raise WorldDataError("no offscreen OpenGL backend works for MuJoCo (run scripts/setup_metaworld_env.sh, which "
                         "installs the Mesa packages): " + "; ".join(errors))


class MetaWorldRenderer:
    """Renders episodes of Meta-World tasks with their scripted experts (each episode opens and closes its own
    simulator and GL context, so nothing leaks between episodes)."""

    def __init__(self, image_size: int = DEFAULT_IMAGE_SIZE, camera: tuple[float, float, float] | None = None):
        """camera: (azimuth deg, elevation deg, distance m) of the free camera; None: the training camera."""
        backend = choose_gl_backend()
        os.environ["MUJOCO_GL"] = backend
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
        import mujoco  # noqa: PLC0415  (only after MUJOCO_GL is set)
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE  # noqa: PLC0415
        from metaworld.policies import ENV_POLICY_MAP  # noqa: PLC0415

        self.gl_backend = backend
        self.image_size = image_size
        self.camera = camera or (CAMERA_AZIMUTH_DEG, CAMERA_ELEVATION_DEG, CAMERA_DISTANCE_M)
        self._mujoco = mujoco
        self._env_classes = ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
        self._policies = ENV_POLICY_MAP
        self.discarded_attempts = 0

    def _camera(self):
        camera = self._mujoco.MjvCamera()
        camera.type = self._mujoco.mjtCamera.mjCAMERA_FREE
        camera.lookat[:] = CAMERA_LOOKAT
        camera.azimuth, camera.elevation, camera.distance = self.camera
        return camera

    def render_episode(self, env_name: str, seed: int) -> EpisodeRender | None:
        """One expert episode of `env_name` with object/goal placement drawn from `seed`; None if it must be re-drawn."""
        mujoco = self._mujoco
        spec = TASKS[env_name]
        # The goal-observable class seeds the object/goal placement from `seed` at construction (deterministic).
        env = self._env_classes[f"{env_name}-goal-observable"](seed=seed)
        env.max_path_length = MAX_EXPERT_STEPS + TAIL_STEPS + 1  # our slowed expert needs more than the default 500
        env.model.vis.quality.shadowsize = SHADOW_MAP_SIZE  # both must be set before the GL context is made
        env.model.vis.quality.offsamples = MSAA_SAMPLES
        renderer = mujoco.Renderer(env.model, self.image_size, self.image_size)
        scene_option = mujoco.MjvOption()
        scene_option.sitegroup[:] = 0  # hide goal markers: the picture shows only the physical world
        camera = self._camera()
        policy = self._policies[env_name]()

        def snapshot() -> np.ndarray:
            renderer.update_scene(env.data, camera=camera, scene_option=scene_option)
            return renderer.render().copy()

        try:
            obs, _ = env.reset()
            frames, phases = [snapshot()], ["reach"]
            phase = "reach"
            rest_position: np.ndarray | None = None
            step, tail_step, expert_steps = 0, -1, 0
            home = np.asarray(env.hand_init_pos, dtype=np.float64)
            while True:
                if tail_step < 0:
                    action = np.asarray(policy.get_action(obs), dtype=np.float64).copy()
                    action[:3] *= spec.arm_speed
                else:  # scripted release / retreat: open the gripper, then move the hand home
                    action = np.zeros(4)
                    if tail_step >= TAIL_HOLD_STEPS:
                        action[:3] = np.clip(10.0 * (home - obs[:3]), -1, 1) * spec.arm_speed
                    action[3] = -1.0
                obs, _, _, _, info = env.step(np.clip(action, -1.0, 1.0).astype(np.float32))
                step += 1
                if rest_position is None:  # the object's pose after the first step (reset's observation is stale)
                    rest_position = obs[4:7].copy()
                moved = float(np.linalg.norm(obs[4:7] - rest_position)) > OBJECT_MOVED_M
                if tail_step < 0:
                    if spec.kind == "grasp":
                        if phase == "reach" and action[3] > 0:
                            phase = "grasp"
                        elif phase == "grasp" and moved:
                            phase = "move"
                    elif phase == "reach" and moved:
                        phase = "act"
                    if info["success"]:
                        expert_steps = step
                        phase = spec.phases[-1]
                        tail_step = 0
                    elif step >= MAX_EXPERT_STEPS:
                        return None  # the expert failed on this placement
                else:
                    tail_step += 1
                if step % STEPS_PER_FRAME == 0:
                    frames.append(snapshot())
                    phases.append(phase)
                if tail_step >= TAIL_STEPS:
                    break
        finally:
            renderer.close()
            env.close()
        counts = {p: phases.count(p) for p in spec.phases}
        if min(counts.values()) < MIN_PHASE_FRAMES:
            return None  # a phase too short to see (e.g. the object moved before the hand arrived)
        return EpisodeRender(env_name, seed, np.stack(frames), phases, expert_steps)

    def render_task_episode(self, env_name: str, stream_seed: int, episode_index: int) -> EpisodeRender:
        for attempt in range(MAX_ATTEMPTS_PER_EPISODE):
            episode = self.render_episode(env_name, episode_seed(stream_seed, episode_index, attempt))
            if episode is not None:
                return episode
            self.discarded_attempts += 1
        raise WorldDataError(f"{env_name}: the expert failed {MAX_ATTEMPTS_PER_EPISODE} placements in a row "
                             f"(stream seed {stream_seed}, episode {episode_index})")


# ----------------------------------------------------------------------------------------------- streams


def task_order(seed: int, episode_count: int, task_names: list[str]) -> list[str]:
    """Episodes cycle through shuffled passes over the tasks, never repeating a task back to back."""
    rng = np.random.default_rng([seed, 0x3E7A])
    order: list[str] = []
    while len(order) < episode_count:
        batch = [task_names[i] for i in rng.permutation(len(task_names))]
        if order and len(batch) > 1 and batch[0] == order[-1]:
            batch[0], batch[1] = batch[1], batch[0]
        order += batch
    return order[:episode_count]


def _segments_of(episodes: list[EpisodeRender], stamps_ns: np.ndarray, period_ns: int) -> list[Segment]:
    segments: list[Segment] = []
    offset = 0
    for episode_index, episode in enumerate(episodes):
        spec = TASKS[episode.env_name]
        start = 0
        for i in range(1, len(episode.phases) + 1):
            if i < len(episode.phases) and episode.phases[i] == episode.phases[start]:
                continue
            phase = episode.phases[start]
            first, end = offset + start, offset + i
            end_ns = int(stamps_ns[end]) if end < len(stamps_ns) else int(stamps_ns[end - 1]) + period_ns
            segments.append(Segment(
                start_index=first, end_index=end, start_ns=int(stamps_ns[first]), end_ns=end_ns,
                label=spec.label(phase), captions=list(spec.phase_texts[phase]),
                qa_pairs=phase_question_answers(spec, phase),
                attributes={"world": "metaworld", "task": spec.env_name, "phase": phase, "object": spec.object_phrase,
                            "task_label": spec.task_label},
                episode_index=episode_index,
            ))
            start = i
        offset += len(episode.phases)
    return segments


def _phase_candidates(rng: np.random.Generator, spec: TaskSpec, phase: str, task_names: list[str]) -> list[str]:
    """True phase label + 3 distractors: another phase of the same task, the opposite task's same phase (else
    another task's phase of the same kind), and any other label."""
    true_label = spec.label(phase)
    chosen = [true_label]

    def pick(options: list[str]) -> None:
        options = [o for o in dict.fromkeys(options) if o not in chosen]
        if options:
            chosen.append(options[int(rng.integers(len(options)))])

    pick([spec.label(p) for p in spec.phases if p != phase])
    if spec.opposite in task_names and phase in TASKS[spec.opposite].phases:
        pick([TASKS[spec.opposite].label(phase)])
    else:
        pick([TASKS[n].label(phase) for n in task_names if phase in TASKS[n].phases])
    everything = label_bank(task_names) + label_bank()
    while len(chosen) < 4:
        pick(everything)
    return chosen


def _action_items(episodes: list[EpisodeRender], segments: list[Segment], task_names: list[str],
                  seed: int) -> list[ActionItem]:
    """WorldPrediction-style items: (first, last) frame of each phase, and (episode start, task done) per episode."""
    rng = np.random.default_rng([seed, 0xAC7])
    items: list[ActionItem] = []

    def add(before: int, after: int, candidates: list[str]) -> None:
        action = candidates[0]
        order = rng.permutation(4)
        shuffled = [candidates[i] for i in order]
        items.append(ActionItem(before, after, action, shuffled, shuffled.index(action)))

    for segment in segments:
        if segment.frame_count >= 3:
            spec = TASKS[segment.attributes["task"]]
            add(segment.start_index, segment.end_index - 1,
                _phase_candidates(rng, spec, segment.attributes["phase"], task_names))
    task_labels = [TASKS[n].task_label for n in task_names] + [s.task_label for s in TASKS.values()]
    for episode_index, episode in enumerate(episodes):
        spec = TASKS[episode.env_name]
        own = [s for s in segments if s.episode_index == episode_index]
        done = next(s for s in own if s.attributes["phase"] == spec.phases[-1]).start_index
        candidates = [spec.task_label]
        if spec.opposite:
            candidates.append(TASKS[spec.opposite].task_label)
        others = [t for t in dict.fromkeys(task_labels) if t not in candidates]
        candidates += [others[i] for i in rng.choice(len(others), 4 - len(candidates), replace=False)]
        add(own[0].start_index, done, candidates)
    return items


def build_stream(name: str, seed: int, episodes: list[EpisodeRender], task_names: list[str],
                 fps: float = DEFAULT_FPS) -> WorldStream:
    frames = np.concatenate([e.frames for e in episodes])
    period_ns = int(round(1e9 / fps))
    stamps_ns = BASE_STAMP_NS + np.arange(len(frames), dtype=np.int64) * period_ns
    segments = _segments_of(episodes, stamps_ns, period_ns)
    stream = WorldStream(name=name, seed=seed, fps=fps, frames=frames, stamps_ns=stamps_ns, segments=segments,
                         action_items=_action_items(episodes, segments, task_names, seed),
                         label_bank=label_bank(task_names))
    stream.validate()
    return stream


def render_stream(seed: int, episode_count: int, task_names: list[str] | None = None,
                  image_size: int = DEFAULT_IMAGE_SIZE, name: str | None = None, progress: bool = True,
                  camera: tuple[float, float, float] | None = None) -> WorldStream:
    """Render `episode_count` expert episodes of `task_names` (default: all TASKS) into one 10 Hz WorldStream
    (camera: MetaWorldRenderer's; None renders from the camera every committed bag and training stream uses)."""
    task_names = list(task_names or TASKS)
    unknown = [t for t in task_names if t not in TASKS]
    if unknown:
        raise WorldDataError(f"unknown Meta-World tasks {unknown}; available: {sorted(TASKS)}")
    episodes: list[EpisodeRender] = []
    started = time.perf_counter()
    renderer = MetaWorldRenderer(image_size, camera)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the experts warn about clipped gains on every step
        for episode_index, env_name in enumerate(task_order(seed, episode_count, task_names)):
            episodes.append(renderer.render_task_episode(env_name, seed, episode_index))
            if progress:
                done = sum(len(e.frames) for e in episodes)
                print(f"[metaworld] episode {episode_index + 1}/{episode_count} {env_name}: {len(episodes[-1].frames)} "
                      f"frames, {done / (time.perf_counter() - started):.1f} frames/s ({renderer.gl_backend})",
                      file=sys.stderr, flush=True)
    if progress:
        print(f"[metaworld] {renderer.discarded_attempts} episode attempts re-drawn (expert failed or a phase too short)",
              file=sys.stderr, flush=True)
    return build_stream(name or f"metaworld-{seed}", seed, episodes, task_names)


# ----------------------------------------------------------------------------------------------- compact file


def stream_groundtruth(stream: WorldStream) -> dict:
    return {
        "name": stream.name, "seed": stream.seed, "fps": stream.fps, "world": "metaworld",
        "segments": [s.to_dict() for s in stream.segments],
        "action_items": [a.to_dict() for a in stream.action_items],
        "label_bank": list(stream.label_bank),
    }


def save_stream_npz(path: str | Path, stream: WorldStream) -> None:
    """Frames, stamps and the ground truth as JSON text in one compressed .npz (no pickle)."""
    np.savez_compressed(Path(path), frames=stream.frames, stamps_ns=stream.stamps_ns,
                        groundtruth_json=np.array(json.dumps(stream_groundtruth(stream))))


def load_stream_npz(path: str | Path) -> WorldStream:
    path = Path(path)
    if not path.is_file():
        raise WorldDataError(f"stream file {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        missing = {"frames", "stamps_ns", "groundtruth_json"} - set(data.files)
        if missing:
            raise WorldDataError(f"stream file {path} lacks arrays {sorted(missing)}")
        truth = json.loads(str(data["groundtruth_json"]))
        stream = WorldStream(
            name=truth["name"], seed=int(truth["seed"]), fps=float(truth["fps"]), frames=data["frames"],
            stamps_ns=data["stamps_ns"].astype(np.int64),
            segments=[Segment.from_dict(s) for s in truth["segments"]],
            action_items=[ActionItem.from_dict(a) for a in truth["action_items"]],
            label_bank=list(truth["label_bank"]),
        )
    stream.validate()
    return stream


# ----------------------------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="Runs in .venv-metaworld (scripts/setup_metaworld_env.sh).")
    parser.add_argument("--bag", type=Path, help="write a rosbag2 (mcap, CompressedImage jpeg) + groundtruth.json here")
    parser.add_argument("--npz", type=Path, help="write the compact .npz (frames + ground truth) here")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED_START,
                        help=f"stream seed; training uses seeds < {HELD_OUT_SEED_START}, evaluation seeds >= it")
    parser.add_argument("--episodes", type=int, default=len(TASKS))
    parser.add_argument("--tasks", default="all", help=f"comma-separated Meta-World tasks or 'all': {','.join(TASKS)}")
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE)
    parser.add_argument("--topic", default="/camera/image_raw/compressed")
    parser.add_argument("--name", default=None)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    # Another viewpoint of the same world: near out-of-distribution data (scripts/make_ood_data.sh).
    parser.add_argument("--camera-azimuth", type=float, default=CAMERA_AZIMUTH_DEG,
                        help=f"free camera azimuth in degrees (default: {CAMERA_AZIMUTH_DEG:g}, the training camera's)")
    parser.add_argument("--camera-elevation", type=float, default=CAMERA_ELEVATION_DEG,
                        help=f"free camera elevation in degrees (default: {CAMERA_ELEVATION_DEG:g})")
    parser.add_argument("--camera-distance", type=float, default=CAMERA_DISTANCE_M,
                        help=f"free camera distance in metres (default: {CAMERA_DISTANCE_M:g})")
    args = parser.parse_args(argv)
    if args.bag is None and args.npz is None:
        parser.error("give --bag and/or --npz")
    task_names = list(TASKS) if args.tasks == "all" else [t.strip() for t in args.tasks.split(",") if t.strip()]

    started = time.perf_counter()
    camera = (args.camera_azimuth, args.camera_elevation, args.camera_distance)
    stream = render_stream(args.seed, args.episodes, task_names, args.image_size, args.name, camera=camera)
    elapsed = time.perf_counter() - started
    if args.npz:
        args.npz.parent.mkdir(parents=True, exist_ok=True)
        save_stream_npz(args.npz, stream)
    if args.bag:
        from vljepa_ros.world.bag_io import write_stream_bag  # noqa: PLC0415  (rosbags: only needed for bags)

        args.bag.parent.mkdir(parents=True, exist_ok=True)
        write_stream_bag(args.bag, stream, topic=args.topic, compressed=True, storage="mcap", overwrite=args.overwrite)
    print(json.dumps({
        "name": stream.name, "seed": stream.seed, "frames": stream.frame_count, "episodes": args.episodes,
        "segments": len(stream.segments), "action_items": len(stream.action_items),
        "labels": len(stream.label_bank), "image_size": args.image_size, "render_s": round(elapsed, 1),
        "frames_per_s": round(stream.frame_count / elapsed, 1),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
