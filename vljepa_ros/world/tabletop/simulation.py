"""The tabletop world's physics: scenes, objects and a gripper that carries out tasks, frame by frame.

Deterministic per (seed, episode index); the renderer draws the snapshots it records, and the segment
records are the ground truth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from vljepa_ros.world.tabletop.language import COLOURS, DIRECTIONS, SHAPES

# Table coordinates are [0, 1] across the image. Objects are big (diameter ≈ 0.15 of the image) for 64 px models.
OBJECT_RADIUS_RANGE = (0.065, 0.085)
TABLE_MARGIN = 0.13
MIN_OBJECT_SPACING = 0.21
HOME = (0.5, 0.8)


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
