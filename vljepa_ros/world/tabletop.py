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

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from vljepa_ros.world.types import ActionItem, Segment, WorldStream

COLOURS: dict[str, tuple[int, int, int]] = {  # RGB, far apart in hue so a small ViT separates them at 64 px
    "red": (215, 35, 35),
    "green": (30, 170, 55),
    "blue": (35, 75, 225),
    "yellow": (240, 205, 25),
}
SHAPES = ("cube", "ball", "triangle")
DIRECTIONS: dict[str, tuple[float, float]] = {  # unit steps in table coordinates (x right, y down the image)
    "left": (-1.0, 0.0),
    "right": (1.0, 0.0),
    "forward": (0.0, -1.0),
    "back": (0.0, 1.0),
}
OPPOSITE = {"left": "right", "right": "left", "forward": "back", "back": "forward"}
VERBS = ("reach", "pick", "move", "place", "push", "appear", "disappear")
DIRECTED_VERBS = ("move", "push")

DEFAULT_IMAGE_SIZE = 64
DEFAULT_FPS = 10.0
BASE_STAMP_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z: plausible wall-clock stamps for bags

# Table coordinates are [0, 1] across the image. Objects are big (diameter ≈ 0.15 of the image) for 64 px models.
OBJECT_RADIUS_RANGE = (0.065, 0.085)
TABLE_MARGIN = 0.13
MIN_OBJECT_SPACING = 0.21
HOME = (0.5, 0.8)
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


# ----------------------------------------------------------------------------------------------- language


def object_phrase(colour: str, shape: str) -> str:
    return f"the {colour} {shape}"


def action_label(verb: str, colour: str, shape: str, direction: str | None = None) -> str:
    """Canonical class label of one action; the label bank is every value this can return."""
    obj = object_phrase(colour, shape)
    if verb == "reach":
        return f"reach for {obj}"
    if verb == "pick":
        return f"pick up {obj}"
    if verb == "move":
        return f"move {obj} {direction}"
    if verb == "place":
        return f"put down {obj}"
    if verb == "push":
        return f"push {obj} {direction}"
    if verb == "appear":
        return f"{obj} appears"
    if verb == "disappear":
        return f"{obj} disappears"
    raise ValueError(f"unknown verb {verb!r}; expected one of {VERBS}")


_DIRECTION_PHRASES = {
    "left": ("left", "to the left"),
    "right": ("right", "to the right"),
    "forward": ("forward", "away from the robot"),
    "back": ("back", "towards the robot"),
}


def action_captions(verb: str, colour: str, shape: str, direction: str | None = None) -> list[str]:
    """Paraphrases of one action; the first is the class label."""
    obj = object_phrase(colour, shape)
    label = action_label(verb, colour, shape, direction)
    if verb == "reach":
        others = [f"the robot reaches for {obj}", f"the gripper moves towards {obj}", f"the open gripper approaches {obj}"]
    elif verb == "pick":
        others = [f"the robot picks up {obj}", f"the gripper grasps {obj} and lifts it", f"lifting {obj} off the table"]
    elif verb == "move":
        short, long = _DIRECTION_PHRASES[direction]
        others = [f"the robot carries {obj} {long}", f"moving {obj} {short} while holding it", f"{obj} is carried {long}"]
    elif verb == "place":
        others = [f"the robot puts down {obj}", f"place {obj} on the table", f"the gripper lowers {obj} and lets go"]
    elif verb == "push":
        short, long = _DIRECTION_PHRASES[direction]
        others = [f"the robot pushes {obj} {long}", f"the gripper slides {obj} {short}", f"{obj} is pushed {long}"]
    elif verb == "appear":
        others = [f"{obj} appears on the table", f"a {colour} {shape} shows up", f"{obj} comes into view"]
    elif verb == "disappear":
        others = [f"{obj} vanishes from the table", f"the {colour} {shape} goes away", f"{obj} fades out of view"]
    else:
        raise ValueError(f"unknown verb {verb!r}")
    return [label, *others]


def all_action_keys() -> list[tuple[str, str, str, str | None]]:
    keys = []
    for verb in VERBS:
        for colour in COLOURS:
            for shape in SHAPES:
                for direction in DIRECTIONS if verb in DIRECTED_VERBS else (None,):
                    keys.append((verb, colour, shape, direction))
    return keys


def label_bank() -> list[str]:
    """Every class label the tabletop world can produce, in a fixed order."""
    return [action_label(*key) for key in all_action_keys()]


_VERB_GERUNDS = {
    "reach": "reaching for an object",
    "pick": "picking up an object",
    "move": "carrying an object",
    "place": "putting down an object",
    "push": "pushing an object",
    "appear": "staying still",
    "disappear": "staying still",
}
QUESTIONS = {
    "colour": "What colour is the object the robot is handling?",
    "shape": "What shape is the object the robot is handling?",
    "object": "Which object is the robot handling?",
    "doing": "What is the robot doing?",
    "moved_colour": "What colour is the object being moved?",
    "direction": "Which way is the object moving?",
    "holding": "Is the robot holding an object?",
    "count": "How many objects are there?",
    "appear_object": "Which object appears?",
    "appear_colour": "What colour is the object that appears?",
    "disappear_object": "Which object disappears?",
    "disappear_colour": "What colour is the object that disappears?",
}


def question_answers(verb: str, colour: str, shape: str, direction: str | None, object_count: int) -> list[tuple[str, str]]:
    """Questions whose answer holds during the whole segment (so any clip inside it can be asked them)."""
    pairs: list[tuple[str, str]] = [(QUESTIONS["doing"], _VERB_GERUNDS[verb])]
    if verb in ("appear", "disappear"):
        pairs += [
            (QUESTIONS[f"{verb}_object"], object_phrase(colour, shape)),
            (QUESTIONS[f"{verb}_colour"], colour),
            (QUESTIONS["holding"], "no"),
        ]
        return pairs
    pairs += [
        (QUESTIONS["colour"], colour),
        (QUESTIONS["shape"], shape),
        (QUESTIONS["object"], object_phrase(colour, shape)),
        (QUESTIONS["count"], NUMBER_WORDS.get(object_count, str(object_count))),
    ]
    if verb in DIRECTED_VERBS:
        pairs += [(QUESTIONS["moved_colour"], colour), (QUESTIONS["direction"], direction)]
    if verb in ("reach", "push"):
        pairs.append((QUESTIONS["holding"], "no"))
    if verb == "move":
        pairs.append((QUESTIONS["holding"], "yes"))
    return pairs


def deployment_banks() -> dict[str, list[str]]:
    """What a node needs to know about this world: class labels (zero-shot top-k), captions (the
    retrieval decoder's bank) and candidate actions (inverse dynamics). Saved with a model trained
    on the world (vljepa_ros.model.checkpoint.save_banks)."""
    captions = sorted({caption for key in all_action_keys() for caption in action_captions(*key)})
    return {"labels": label_bank(), "captions": captions, "actions": label_bank()}


def world_texts() -> list[str]:
    """Every caption, question and answer the world can produce (e.g. to build a word tokenizer)."""
    texts: set[str] = set()
    for key in all_action_keys():
        texts.update(action_captions(*key))
    texts.update(QUESTIONS.values())
    texts.update(_VERB_GERUNDS.values())
    texts.update(COLOURS)
    texts.update(SHAPES)
    texts.update(DIRECTIONS)
    texts.update(NUMBER_WORDS.values())
    texts.update({"yes", "no"})
    texts.update(object_phrase(c, s) for c in COLOURS for s in SHAPES)
    return sorted(texts)


def action_candidates(
    rng: np.random.Generator,
    verb: str,
    colour: str,
    shape: str,
    direction: str | None,
    scene_objects: list[tuple[str, str]],
) -> tuple[list[str], int]:
    """4 shuffled candidates: the true action plus hard distractors (same object other action,
    same action other colour, same action on another object of the scene or another shape)."""
    true_label = action_label(verb, colour, shape, direction)
    # 1) same object, a confusable other action (inverse actions, opposite directions)
    if verb in DIRECTED_VERBS:
        other_verb = "push" if verb == "move" else "move"
        confusable = [(verb, OPPOSITE[direction]), (verb, rng.choice([d for d in DIRECTIONS if d != direction])),
                      (other_verb, direction)]
    else:
        confusable = {
            "reach": [("pick", None), ("push", str(rng.choice(list(DIRECTIONS))))],
            "pick": [("place", None), ("reach", None)],
            "place": [("pick", None), ("move", str(rng.choice(list(DIRECTIONS))))],
            "appear": [("disappear", None)],
            "disappear": [("appear", None)],
        }[verb]
    alt_verb, alt_direction = confusable[int(rng.integers(len(confusable)))]
    distractors = [action_label(alt_verb, colour, shape, alt_direction)]
    # 2) same action, other colour (same shape)
    other_colour = str(rng.choice([c for c in COLOURS if c != colour]))
    distractors.append(action_label(verb, other_colour, shape, direction))
    # 3) same action, another object that is in the scene, else same colour other shape
    others = [o for o in scene_objects if o != (colour, shape) and o != (other_colour, shape)]
    if others:
        third_colour, third_shape = others[int(rng.integers(len(others)))]
    else:
        third_colour, third_shape = colour, str(rng.choice([s for s in SHAPES if s != shape]))
    distractors.append(action_label(verb, third_colour, third_shape, direction))
    candidates = [true_label, *distractors]
    assert len(set(candidates)) == 4, candidates
    order = rng.permutation(4)
    shuffled = [candidates[i] for i in order]
    return shuffled, shuffled.index(true_label)


# ----------------------------------------------------------------------------------------------- simulation


@dataclass
class TableObject:
    colour: str
    shape: str
    x: float
    y: float
    radius: float
    angle: float  # degrees; cubes and triangles lie at random orientations
    rgb: tuple[int, int, int]  # colour with a small per-episode jitter
    dark_rgb: tuple[int, int, int] = (0, 0, 0)  # outline colour
    lift: float = 0.0  # 0 on the table, 1 held high
    visibility: float = 1.0  # scale factor for appearing / disappearing


@dataclass
class Gripper:
    x: float = HOME[0]
    y: float = HOME[1]
    height: float = 1.0  # 0 at the table, 1 high
    opening: float = 1.0  # 0 closed, 1 open
    holding: TableObject | None = None


@dataclass
class Snapshot:
    """Everything the renderer needs for one frame (plain tuples: cheap to copy)."""

    objects: list[tuple]
    gripper: tuple[float, float, float, float, float]  # x, y, height, opening, held radius (0 when empty)


@dataclass
class EpisodeScene:
    table_rgb: tuple[int, int, int]
    gradient: float  # strength of the lighting gradient across the table
    gradient_angle: float


@dataclass
class _SegmentRecord:
    start: int
    end: int
    verb: str
    colour: str
    shape: str
    direction: str | None
    object_count: int
    scene_objects: list[tuple[str, str]]
    episode_index: int


def _smooth(t: float) -> float:
    t = min(max(t, 0.0), 1.0)
    return t * t * (3.0 - 2.0 * t)


def _phase(t: float, start: float, end: float) -> float:
    """Eased progress of a phase that runs from fraction `start` to `end` of a segment."""
    return _smooth((t - start) / (end - start))


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


@dataclass
class _EpisodeSimulator:
    rng: np.random.Generator
    fps: float
    episode_index: int
    objects: list[TableObject] = field(default_factory=list)
    gripper: Gripper = field(default_factory=Gripper)
    snapshots: list[Snapshot] = field(default_factory=list)
    records: list[_SegmentRecord] = field(default_factory=list)

    # -- scene set-up ---------------------------------------------------------------------------------

    def free_position(self, away_from_gripper: bool = False) -> tuple[float, float] | None:
        for _ in range(60):
            x, y = self.rng.uniform(TABLE_MARGIN, 1.0 - TABLE_MARGIN, size=2)
            if any(math.hypot(x - o.x, y - o.y) < MIN_OBJECT_SPACING for o in self.objects):
                continue
            if away_from_gripper and math.hypot(x - self.gripper.x, y - self.gripper.y) < 0.2:
                continue
            return float(x), float(y)
        return None

    def new_object(self, visibility: float = 1.0) -> TableObject | None:
        present = {(o.colour, o.shape) for o in self.objects}
        choices = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in present]
        position = self.free_position(away_from_gripper=True)
        if position is None or not choices:
            return None
        colour, shape = choices[int(self.rng.integers(len(choices)))]
        jitter = self.rng.integers(-14, 15, size=3)
        rgb = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(COLOURS[colour], jitter))
        return TableObject(
            colour=colour,
            shape=shape,
            x=position[0],
            y=position[1],
            radius=float(self.rng.uniform(*OBJECT_RADIUS_RANGE)),
            angle=float(self.rng.uniform(0.0, 360.0)),
            rgb=rgb,
            dark_rgb=tuple(int(c * 0.55) for c in rgb),
            visibility=visibility,
        )

    def populate(self) -> None:
        for _ in range(int(self.rng.integers(2, 5))):
            obj = self.new_object()
            if obj is not None:
                self.objects.append(obj)
        self.gripper = Gripper(
            x=float(HOME[0] + self.rng.uniform(-0.15, 0.15)), y=float(HOME[1] + self.rng.uniform(-0.05, 0.08))
        )

    # -- frame bookkeeping ----------------------------------------------------------------------------

    def snapshot(self) -> None:
        objects = [(o.shape, o.rgb, o.dark_rgb, o.x, o.y, o.radius, o.angle, o.lift, o.visibility) for o in self.objects]
        g = self.gripper
        held_radius = g.holding.radius if g.holding is not None else 0.0
        self.snapshots.append(Snapshot(objects, (g.x, g.y, g.height, g.opening, held_radius)))

    def frames_for(self, low_s: float, high_s: float) -> int:
        return max(2, int(round(self.rng.uniform(low_s, high_s) * self.fps)))

    def run_segment(self, verb: str, obj: TableObject, direction: str | None, n: int, step) -> None:
        start = len(self.snapshots)
        object_count = len(self.objects)
        scene = [(o.colour, o.shape) for o in self.objects]
        for i in range(n):
            step((i + 1) / n)  # last frame reaches the segment's end state exactly
            self.snapshot()
        self.records.append(
            _SegmentRecord(start, len(self.snapshots), verb, obj.colour, obj.shape, direction, object_count, scene,
                           self.episode_index)
        )

    # -- tasks ----------------------------------------------------------------------------------------

    def reach(self, obj: TableObject) -> None:
        g = self.gripper
        x0, y0, h0, open0 = g.x, g.y, g.height, g.opening

        def step(t: float) -> None:
            s = _smooth(t)
            g.x, g.y = _lerp(x0, obj.x, s), _lerp(y0, obj.y, s)
            g.height = _lerp(h0, 1.0, _phase(t, 0.0, 0.4))
            g.opening = _lerp(open0, 1.0, _phase(t, 0.0, 0.3))

        self.run_segment("reach", obj, None, self.frames_for(2.0, 3.0), step)

    def pick(self, obj: TableObject) -> None:
        g = self.gripper

        def step(t: float) -> None:
            down, close, up = _phase(t, 0.0, 0.35), _phase(t, 0.35, 0.55), _phase(t, 0.55, 1.0)
            g.height = _lerp(1.0, 0.12, down) if up == 0.0 else _lerp(0.12, 1.0, up)
            g.opening = 1.0 - close
            obj.lift = up
            if close > 0.0:
                g.holding = obj  # the fingers stop at the object's sides

        self.run_segment("pick", obj, None, self.frames_for(2.0, 3.0), step)
        g.holding = obj

    def move(self, obj: TableObject, direction: str, distance: float) -> None:
        g = self.gripper
        dx, dy = DIRECTIONS[direction]
        x0, y0 = obj.x, obj.y

        def step(t: float) -> None:
            s = _smooth(t)
            obj.x, obj.y = x0 + dx * distance * s, y0 + dy * distance * s
            g.x, g.y = obj.x, obj.y

        self.run_segment("move", obj, direction, self.frames_for(2.0, 3.5), step)

    def place(self, obj: TableObject) -> None:
        g = self.gripper

        def step(t: float) -> None:
            down, release, up = _phase(t, 0.0, 0.45), _phase(t, 0.45, 0.65), _phase(t, 0.65, 1.0)
            g.height = _lerp(1.0, 0.12, down) if up == 0.0 else _lerp(0.12, 1.0, up)
            obj.lift = 1.0 - down
            g.opening = release
            if up > 0.0:
                g.holding = None

        self.run_segment("place", obj, None, self.frames_for(2.0, 3.0), step)
        g.holding = None

    def push(self, obj: TableObject, direction: str, distance: float) -> None:
        g = self.gripper
        dx, dy = DIRECTIONS[direction]
        gap = obj.radius + 0.06  # the closed fingers touch the object's far side
        behind_x, behind_y = obj.x - dx * gap, obj.y - dy * gap
        x0, y0, h0, open0 = g.x, g.y, g.height, g.opening
        ox0, oy0 = obj.x, obj.y

        def step(t: float) -> None:
            approach, slide = _phase(t, 0.0, 0.3), _phase(t, 0.3, 1.0)
            g.height = _lerp(h0, 0.1, approach)
            g.opening = _lerp(open0, 0.0, approach)
            obj.x, obj.y = ox0 + dx * distance * slide, oy0 + dy * distance * slide
            g.x = _lerp(x0, behind_x, approach) + dx * distance * slide
            g.y = _lerp(y0, behind_y, approach) + dy * distance * slide

        self.run_segment("push", obj, direction, self.frames_for(2.5, 4.0), step)

    def appear(self) -> bool:
        obj = self.new_object(visibility=0.0)
        if obj is None:
            return False
        self.objects.append(obj)

        def step(t: float) -> None:
            obj.visibility = t  # grows through the whole segment so every window shows change

        self.run_segment("appear", obj, None, self.frames_for(2.0, 3.0), step)
        return True

    def disappear(self, obj: TableObject) -> None:
        def step(t: float) -> None:
            obj.visibility = 1.0 - t

        self.run_segment("disappear", obj, None, self.frames_for(2.0, 3.0), step)
        self.objects.remove(obj)

    # -- task choice ----------------------------------------------------------------------------------

    def clear_path(self, obj: TableObject, direction: str, distance: float, sliding: bool) -> bool:
        dx, dy = DIRECTIONS[direction]
        end_x, end_y = obj.x + dx * distance, obj.y + dy * distance
        if not (TABLE_MARGIN <= end_x <= 1 - TABLE_MARGIN and TABLE_MARGIN <= end_y <= 1 - TABLE_MARGIN):
            return False
        # a pushed object slides through every point of its path; a carried one only lands at the end
        samples = np.linspace(0.0, 1.0, 6) if sliding else (1.0,)
        for s in samples:
            px, py = obj.x + dx * distance * s, obj.y + dy * distance * s
            for other in self.objects:
                if other is not obj and math.hypot(px - other.x, py - other.y) < MIN_OBJECT_SPACING:
                    return False
        return True

    def feasible_directions(self, obj: TableObject, sliding: bool) -> list[tuple[str, float]]:
        options = []
        for direction in DIRECTIONS:
            distance = float(self.rng.uniform(0.22, 0.34))
            if self.clear_path(obj, direction, distance, sliding):
                options.append((direction, distance))
        return options

    def try_pick_and_place(self) -> bool:
        far = [o for o in self.objects if math.hypot(o.x - self.gripper.x, o.y - self.gripper.y) > 0.22]
        self.rng.shuffle(far)
        for obj in far:
            options = self.feasible_directions(obj, sliding=False)
            if options:
                direction, distance = options[int(self.rng.integers(len(options)))]
                self.reach(obj)
                self.pick(obj)
                self.move(obj, direction, distance)
                self.place(obj)
                return True
        return False

    def try_push(self) -> bool:
        candidates = list(self.objects)
        self.rng.shuffle(candidates)
        for obj in candidates:
            options = self.feasible_directions(obj, sliding=True)
            if options:
                direction, distance = options[int(self.rng.integers(len(options)))]
                self.push(obj, direction, distance)
                return True
        return False

    def try_disappear(self) -> bool:
        if len(self.objects) <= 2:
            return False
        self.disappear(self.objects[int(self.rng.integers(len(self.objects)))])
        return True

    def try_appear(self) -> bool:
        return len(self.objects) < 5 and self.appear()

    def run_tasks(self, task_count: int) -> None:
        tasks = {"pick_and_place": self.try_pick_and_place, "push": self.try_push,
                 "appear": self.try_appear, "disappear": self.try_disappear}
        names = list(tasks)
        weights = np.array([0.35, 0.35, 0.15, 0.15])
        for _ in range(task_count):
            order = self.rng.choice(len(names), size=len(names), replace=False, p=weights)
            for index in order:  # the first feasible task in a weighted random order
                if tasks[names[index]]():
                    break


def simulate_episode(seed: int, episode_index: int, fps: float) -> tuple[EpisodeScene, list[Snapshot], list[_SegmentRecord]]:
    """The states of one episode; seeded by (seed, episode_index) so episodes can be generated in chunks."""
    rng = np.random.default_rng([seed, episode_index, 0x7AB1E])
    base = np.array([168, 156, 138]) + rng.integers(-18, 19, size=3)  # mild table tint (wood, grey, greenish)
    scene = EpisodeScene(
        table_rgb=tuple(int(v) for v in np.clip(base, 90, 200)),
        gradient=float(rng.uniform(0.0, 0.18)),
        gradient_angle=float(rng.uniform(0.0, 2 * math.pi)),
    )
    simulator = _EpisodeSimulator(rng=rng, fps=fps, episode_index=episode_index)
    simulator.populate()
    while not simulator.records:  # a scene where no task fits is vanishingly rare; retry the task draw
        simulator.run_tasks(int(rng.integers(2, 5)))
    return scene, simulator.snapshots, simulator.records


# ----------------------------------------------------------------------------------------------- rendering

_SHIFT = 4  # OpenCV fixed-point bits: sub-pixel positions so slow motions stay smooth at 64 px
_ONE = 1 << _SHIFT


class TabletopRenderer:
    """Draws snapshots into uint8 RGB images of one size. Noise comes from its own generator."""

    def __init__(self, image_size: int, noise_seed: int, noise_std: float = 3.0):
        if image_size < 32:
            raise ValueError(f"image_size must be at least 32 px, got {image_size}")
        self.size = image_size
        self.rng = np.random.default_rng(noise_seed)
        # A noise pool twice the image size; each frame takes a random window of it (cheaper than fresh noise).
        noise = self.rng.normal(0.0, noise_std, size=(2 * image_size, 2 * image_size, 3))
        self.noise_plus = np.clip(noise, 0, 255).astype(np.uint8)
        self.noise_minus = np.clip(-noise, 0, 255).astype(np.uint8)
        self.outline = max(1, image_size // 64)
        self.arm_width = max(2, int(0.06 * image_size))
        self.base_point = (int(0.5 * image_size * _ONE), int(1.04 * image_size * _ONE))
        self._background_key: tuple | None = None
        self._background: np.ndarray | None = None

    def point(self, x: float, y: float) -> tuple[int, int]:
        return int(round(x * self.size * _ONE)), int(round(y * self.size * _ONE))

    def background(self, scene: EpisodeScene) -> np.ndarray:
        key = (scene.table_rgb, scene.gradient, scene.gradient_angle)
        if key != self._background_key:
            s = self.size
            yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s - 0.5
            light = 1.0 + scene.gradient * (xx * math.cos(scene.gradient_angle) + yy * math.sin(scene.gradient_angle))
            table = np.clip(light[..., None] * np.array(scene.table_rgb, dtype=np.float32), 0, 255).astype(np.uint8)
            # robot base: a dark half-disc at the bottom edge, where the arm comes from
            cv2.circle(table, self.point(0.5, 1.04), int(0.15 * s * _ONE), (70, 70, 78), -1, cv2.LINE_AA, _SHIFT)
            self._background_key, self._background = key, table
        return self._background

    def draw_object(self, image: np.ndarray, shape: str, rgb, dark, x, y, radius, angle, lift, visibility, shade) -> None:
        scale = visibility * (1.0 + 0.35 * lift)  # lifted objects are closer to the camera, so bigger
        if scale <= 0.02:
            return
        unit = self.size * _ONE
        if lift > 0.0:  # shadow on the table, offset away from the light
            offset = 0.05 * lift
            cv2.circle(image, (int((x + offset) * unit), int((y + offset) * unit)), int(radius * visibility * unit),
                       shade, -1, cv2.LINE_AA, _SHIFT)
        cx, cy = x * unit, y * unit
        r = radius * scale * unit
        if shape == "ball":
            centre = (int(cx), int(cy))
            cv2.circle(image, centre, int(r), rgb, -1, cv2.LINE_AA, _SHIFT)
            cv2.circle(image, centre, int(r), dark, self.outline, cv2.LINE_AA, _SHIFT)
            cv2.circle(image, (int(cx - 0.35 * r), int(cy - 0.35 * r)), int(0.28 * r), (250, 250, 245), -1,
                       cv2.LINE_AA, _SHIFT)
            return
        if shape == "cube":
            corners, extent = 4, 1.30 * r  # half-diagonal; similar areas for all shapes
        else:
            corners, extent = 3, 1.25 * r
        theta0, step = math.radians(angle), 2.0 * math.pi / corners
        points = np.array(
            [(cx + extent * math.cos(theta0 + k * step), cy + extent * math.sin(theta0 + k * step)) for k in range(corners)],
            dtype=np.int32,
        )
        cv2.fillConvexPoly(image, points, rgb, cv2.LINE_AA, _SHIFT)
        cv2.polylines(image, (points,), True, dark, self.outline, cv2.LINE_AA, _SHIFT)

    def draw_gripper(self, image: np.ndarray, gx, gy, height, opening, held_radius) -> None:
        unit = self.size * _ONE
        scale = 1.0 + 0.45 * height  # a higher gripper is closer to the camera
        half_gap = (0.035 + 0.08 * opening) * scale
        finger_half_length = 0.07 * scale
        finger_half_width = 0.018 * scale
        palm_y = gy + finger_half_length
        if held_radius > 0.0:
            held_half_width = held_radius * (1.0 + 0.35 * height)  # matches the held object's drawn size
            half_gap = max(half_gap, held_half_width + finger_half_width * 0.7)
            palm_y = max(palm_y, gy + held_half_width + 0.02)  # keep the palm off the object's colour
        # arm: from the robot base to the palm
        cv2.line(image, self.base_point, (int(gx * unit), int((palm_y + 0.02) * unit)), (95, 95, 105),
                 self.arm_width, cv2.LINE_AA, _SHIFT)
        left, right = gx - half_gap - finger_half_width, gx + half_gap + finger_half_width
        top, bottom = palm_y - 0.012 * scale, palm_y + 0.022 * scale
        palm = np.array([(left, top), (right, top), (right, bottom), (left, bottom)]) * unit
        cv2.fillConvexPoly(image, palm.astype(np.int32), (45, 45, 52), cv2.LINE_AA, _SHIFT)
        fingers = []
        for fx in (gx - half_gap, gx + half_gap):
            box = np.array([(fx - finger_half_width, gy - finger_half_length), (fx + finger_half_width, gy - finger_half_length),
                            (fx + finger_half_width, palm_y), (fx - finger_half_width, palm_y)]) * unit
            fingers.append(box.astype(np.int32))
        cv2.fillPoly(image, fingers, (235, 235, 240), cv2.LINE_AA, _SHIFT)
        cv2.polylines(image, fingers, True, (40, 40, 48), self.outline, cv2.LINE_AA, _SHIFT)

    def render(self, scene: EpisodeScene, snapshot: Snapshot) -> np.ndarray:
        image = self.background(scene).copy()
        shade = tuple(int(c * 0.62) for c in scene.table_rgb)
        gx, gy, height, opening, held_radius = snapshot.gripper
        # objects on the table first, lifted (held) objects above them, the gripper on top
        for obj in sorted(snapshot.objects, key=lambda o: o[7]):
            self.draw_object(image, *obj, shade=shade)
        self.draw_gripper(image, gx, gy, height, opening, held_radius)
        ox, oy = self.rng.integers(0, self.size, size=2)
        window = (slice(oy, oy + self.size), slice(ox, ox + self.size))
        cv2.add(image, self.noise_plus[window], dst=image)
        cv2.subtract(image, self.noise_minus[window], dst=image)
        return image


# ----------------------------------------------------------------------------------------------- streams


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
