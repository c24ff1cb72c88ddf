"""Draws tabletop snapshots into uint8 RGB images with OpenCV (sub-pixel fixed-point geometry, cached
backgrounds, pooled noise)."""
from __future__ import annotations

import math

import cv2
import numpy as np

from vljepa_ros.world.tabletop.simulation import EpisodeScene, Snapshot


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
