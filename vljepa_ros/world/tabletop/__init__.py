"""A procedural tabletop robot world drawn with OpenCV: fast, deterministic per seed, with exact ground truth.

Top-down view of a table. A robot arm comes in from the bottom edge (the robot's side) and ends in a two-finger
gripper; its height shows as size (closer to the camera = bigger). Objects are red/green/blue/yellow
cubes/balls/triangles. An episode is one scene (table tint, objects) and a few tasks; each task is one or more
segments with a homogeneous visual signature, so any 8-frame window (0.8 s at 10 Hz) shows what is happening:

    reach for X      open gripper, high, moves towards X
    pick up X        gripper descends, closes on X, lifts it (X grows and casts a shadow)
    move X <dir>     X is carried while lifted
    put down X       X is lowered, the gripper opens and rises
    push X <dir>     closed gripper, low, comes behind X and slides it along the table
    X appears        X grows from nothing     /   X disappears: X shrinks to nothing

Directions are seen from the robot: left/right in the image, forward = away from the robot (up in the image),
back = towards the robot (down). Simulation and rendering use separate random generators, so the ground truth
of a seed does not depend on the image size.
"""
from __future__ import annotations

import numpy as np

from vljepa_ros.world.tabletop.language import (COLOURS, DIRECTED_VERBS, DIRECTIONS, OPPOSITE, QUESTIONS, SHAPES,
                                                VERBS, action_candidates, action_captions, action_label,
                                                all_action_keys, confusable_labels, deployment_banks, label_bank,
                                                question_answers, world_texts)
from vljepa_ros.world.tabletop.rendering import TabletopRenderer
from vljepa_ros.world.tabletop.simulation import simulate_episode
from vljepa_ros.world.types import BASE_STAMP_NS, ActionItem, Segment, WorldStream

DEFAULT_IMAGE_SIZE = 64
DEFAULT_FPS = 10.0

__all__ = ["COLOURS", "DEFAULT_FPS", "DEFAULT_IMAGE_SIZE", "DIRECTED_VERBS", "DIRECTIONS", "OPPOSITE", "QUESTIONS",
           "SHAPES", "VERBS", "TabletopRenderer", "action_candidates", "action_captions", "action_label",
           "all_action_keys", "confusable_labels", "deployment_banks", "generate_stream", "label_bank",
           "question_answers", "simulate_episode", "world_texts"]



def generate_stream(
    seed: int,
    num_episodes: int,
    fps: float = DEFAULT_FPS,
    image_size: int = DEFAULT_IMAGE_SIZE,
    first_episode: int = 0,
    start_ns: int = BASE_STAMP_NS,
) -> WorldStream:
    """Episodes first_episode .. first_episode+num_episodes-1 of `seed`, concatenated at `fps`.

    Every episode starts a new scene, so meaning and appearance change at the segment boundaries recorded in
    the ground truth. One action item per segment: its first and last frame with 4 candidate actions.
    """
    if num_episodes < 1:
        raise ValueError(f"num_episodes must be at least 1, got {num_episodes}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    renderer = TabletopRenderer(image_size, noise_seed=int(np.random.SeedSequence([seed, first_episode, 0xE0153]).generate_state(1)[0]))
    frames: list[np.ndarray] = []
    segments: list[Segment] = []
    action_items: list[ActionItem] = []
    candidate_rng = np.random.default_rng([seed, first_episode, 0xCA9D])
    period_ns = int(round(1e9 / fps))
    for episode_index in range(first_episode, first_episode + num_episodes):
        scene, snapshots, records = simulate_episode(seed, episode_index, fps)
        offset = len(frames)
        frames.extend(renderer.render(scene, snapshot) for snapshot in snapshots)
        for record in records:
            start, end = offset + record.start, offset + record.end
            key = (record.verb, record.colour, record.shape, record.direction)
            attributes = {"verb": record.verb, "colour": record.colour, "shape": record.shape}
            if record.direction is not None:
                attributes["direction"] = record.direction
            segments.append(
                Segment(
                    start_index=start,
                    end_index=end,
                    start_ns=start_ns + start * period_ns,
                    end_ns=start_ns + end * period_ns,
                    label=action_label(*key),
                    captions=action_captions(*key),
                    qa_pairs=question_answers(*key, record.object_count),
                    attributes=attributes,
                    confusable_labels=tuple(confusable_labels(*key)),
                    episode_index=record.episode_index,
                )
            )
            candidates, answer_index = action_candidates(candidate_rng, *key, record.scene_objects)
            action_items.append(ActionItem(start, end - 1, action_label(*key), candidates, answer_index))
    stream = WorldStream(
        name=f"tabletop-seed{seed}-ep{first_episode}-{first_episode + num_episodes - 1}",
        seed=seed,
        fps=float(fps),
        frames=np.stack(frames),
        stamps_ns=start_ns + np.arange(len(frames), dtype=np.int64) * period_ns,
        segments=segments,
        action_items=action_items,
        label_bank=label_bank(),
    )
    return stream
