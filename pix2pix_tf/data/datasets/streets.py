"""Procedural street scenes: a Cityscapes-style label map and a photo-like rendering.

Each scene is a street seen from a car: a road with lane markings receding to a
vanishing point, sidewalks, rows of buildings with windows (or hedges, walls and
fences), sky with clouds, and cars, people, poles with signs and traffic lights,
and trees, drawn far to near. Everything is placed in a simple 3-D world and
projected with a pinhole camera, so sizes, perspective, shadows and haze agree
between the label map and the photo. The label map uses the official Cityscapes
colours; the photo shades every class with its own material, texture and light.

`render_pair(seed)` is deterministic: the same seed gives the same pixels. Halves
are square by default, squeezed like Berkeley's Cityscapes pairs; `width` renders
other aspects (2:1 like the Cityscapes frames) with the same street, wider.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pix2pix_tf.data.cityscapes_labels import CLASSES

_COLOR = dict(CLASSES)
_COLOR["ego vehicle"] = (0, 0, 0)  # Void in Cityscapes: the camera car's hood.
_NAMES = tuple(_COLOR)
_ID = {name: index for index, name in enumerate(_NAMES)}
PALETTE = np.array([_COLOR[name] for name in _NAMES], np.uint8)

# Camera: height above the road in metres; focal length in image widths.
_CAMERA_HEIGHT = 1.4
_FOCAL = 0.7
_FAR = 400.0  # Metres; segments repeat beyond this.
_FACADE_TYPES = ("building", "building", "building", "building", "vegetation", "wall", "fence")


def render_pair(seed, size: int = 256, width: int | None = None) -> np.ndarray:
    """Returns a [size, 2 * width, 3] uint8 pair (width: size): photo left, label map right."""
    rng = np.random.default_rng(seed)
    scene = _Scene(rng, size, size if width is None else width)
    labels, photo = scene.background()
    for thing in sorted(scene.objects(), key=lambda item: -item[0]):
        scene.draw(labels, photo, *thing)
    scene.hood(labels, photo)
    photo = scene.finish(photo)
    return np.concatenate([photo, PALETTE[labels]], axis=1)


def _smooth_noise(rng, height: int, width: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a random grid of `cells` rows (square cells) upsampled bicubically."""
    columns = max(1, round(cells * width / height))
    grid = Image.fromarray(rng.random((cells, columns), dtype=np.float32), mode="F")
    return np.asarray(grid.resize((width, height), Image.BICUBIC), np.float32).clip(0.0, 1.0)


class _Scene:
    def __init__(self, rng, height: int, width: int):
        self.rng, self.height, self.width = rng, height, width
        # Berkeley's Cityscapes squeezes 2:1 frames into squares: half the
        # horizontal focal length gives the same wide look. A 2:1 frame has
        # square pixels: the full focal length.
        self.focal_y = _FOCAL * height
        self.focal_x = self.focal_y / 2 * (width / height)
        self.vx = width * rng.uniform(0.4, 0.6)
        self.vy = height * rng.uniform(0.36, 0.48)
        self.road = (rng.uniform(2.5, 6.0), rng.uniform(2.5, 6.0))  # Left and right.
        self.walk = (rng.uniform(1.5, 4.0), rng.uniform(1.5, 4.0))
        self.grass = tuple(rng.uniform(0, 2.5) if rng.random() < 0.3 else 0.0 for _ in "lr")
        self.facade = tuple(r + w for r, w in zip(self.road, self.walk, strict=True))
        self.sides = (self._segments(), self._segments())
        self.sun = rng.uniform(0.25, 0.7) * rng.choice((-1, 1))  # Shadow length per metre.
        self.light = rng.uniform(0.8, 1.15)
        self.haze = np.array(rng.uniform((175, 190, 200), (215, 225, 235)), np.float32)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
        self.ys, self.xs = ys, xs

    def _segments(self):
        """Facade segments along one side, as arrays: start depth, height, class,
        colour and window spacing."""
        rng, rows, depth = self.rng, [], 1.0
        while depth < _FAR:
            kind = _FACADE_TYPES[rng.integers(len(_FACADE_TYPES))]
            height = {"building": rng.uniform(7, 32), "vegetation": rng.uniform(3, 9)}.get(
                kind, rng.uniform(1.2, 2.5)
            )
            tint = rng.uniform(-25, 25, 3) * (0.3, 0.25, 0.2)
            color = np.clip(rng.uniform(90, 200) + tint, 30, 240)
            rows.append((depth, height, _ID[kind], *color, rng.uniform(2.2, 4.0)))
            depth += rng.uniform(6, 30)
        table = np.array(rows, np.float32)
        return {
            "start": table[:, 0],
            "height": table[:, 1],
            "kind": table[:, 2].astype(np.int32),
            "color": table[:, 3:6],
            "step": table[:, 6],
        }

    def _lookup(self, side: int, depth: np.ndarray):
        segments = self.sides[side]
        index = np.searchsorted(segments["start"], np.mod(depth, _FAR), side="right") - 1
        index = np.maximum(index, 0)
        return (
            index,
            segments["height"][index],
            segments["kind"][index],
            segments["color"][index],
            segments["step"][index],
            segments["start"][index],
        )

    def background(self):
        size, rng, h = (self.height, self.width), self.rng, _CAMERA_HEIGHT
        fx, fy = self.focal_x, self.focal_y
        ys, xs, vx, vy = self.ys, self.xs, self.vx, self.vy
        # The facades are vertical planes, so everything about them but the
        # height above the road depends on the column only: [1, width] arrays.
        columns = xs[:1]
        left = columns < vx
        plane = np.where(left, self.facade[0], self.facade[1])
        facade_depth = np.clip(fx * plane / np.maximum(np.abs(columns - vx), 1e-3), 0.5, 1e6)
        (_, *from_left), (_, *from_right) = (self._lookup(s, facade_depth) for s in (0, 1))
        full = xs.shape
        height, kind, color, step, start = (
            np.broadcast_to(
                np.where(left if a.ndim == 2 else left[..., None], a, b), full + a.shape[2:]
            )
            for a, b in zip(from_left, from_right, strict=True)
        )
        left = np.broadcast_to(left, full)
        facade_depth = np.broadcast_to(facade_depth, full)
        # Rows of each facade: from its roof down to where it meets the ground.
        wall_height = h - (ys - vy) * facade_depth / fy  # Metres above the road.
        noise = _smooth_noise(rng, *size, 64)
        leaves = _smooth_noise(rng, *size, 96)
        top = height + np.where(kind == _ID["vegetation"], 1.5 * _smooth_noise(rng, *size, 24), 0)
        on_facade = (wall_height <= top) & (wall_height >= 0)
        ground = (wall_height < 0) & (ys > vy)
        depth = np.where(ground, fy * h / np.maximum(ys - vy, 1e-3), facade_depth)
        lateral = (xs - vx) * depth / fx  # Metres right of the camera.
        labels = np.full(xs.shape, _ID["sky"], np.int32)
        labels[on_facade] = kind[on_facade]
        labels[ground] = _ID["sidewalk"]
        grass = np.where(
            lateral < 0, self.facade[0] - self.grass[0], self.facade[1] - self.grass[1]
        )
        labels[ground & (np.abs(lateral) > grass)] = _ID["terrain"]
        road = ground & (lateral > -self.road[0]) & (lateral < self.road[1])
        labels[road] = _ID["road"]

        photo = self._sky()
        fine = rng.standard_normal(xs.shape, dtype=np.float32)
        # Only the pixels of each class are shaded: `at(mask)` gathers them.
        at = lambda mask, *fields: [field[mask] for field in fields]  # noqa: E731
        # Buildings: per-building colour, floors of windows, darker shop fronts.
        mask = labels == _ID["building"]
        if mask.any():
            c, y, d, s0, st, wh, hh, n, e, lf = at(
                mask, color, ys, depth, start, step, wall_height, height, noise, fine, left
            )
            along, floor = (d - s0) / np.maximum(st, 1e-3), wh / 3.2
            window = (np.mod(along, 1) > 0.25) & (np.mod(along, 1) < 0.72)
            window &= (np.mod(floor, 1) > 0.3) & (np.mod(floor, 1) < 0.8)
            window &= (wh > 3.2) & (wh < hh - 1.0)
            shop = (wh > 0.3) & (wh < 2.6) & (np.mod(along * 0.5, 1) > 0.1)
            light = np.where(lf == (self.sun > 0), 0.7, 1.05) * self.light
            value = c * (light * (0.9 + 0.2 * n))[:, None] + 3 * e[:, None]
            value[np.mod(floor, 1) < 0.06] *= 0.8  # Ledges between floors.
            glass = np.array([60, 75, 95], np.float32) + (50 * (1 - y / self.height) * n)[:, None]
            value[window | shop] = glass[window | shop]
            photo[mask] = value
        mask = labels == _ID["vegetation"]
        leaf, e = at(mask, leaves, fine)
        photo[mask] = (
            np.array([45, 85, 30], np.float32) * (0.6 + 0.9 * leaf)[:, None] + 6 * e[:, None]
        )
        mask = labels == _ID["wall"]
        c, n = at(mask, color, noise)
        photo[mask] = c * (0.8 + 0.2 * n)[:, None]
        mask = labels == _ID["fence"]
        c, d, s0 = at(mask, color, depth, start)
        bars = np.mod((d - s0) * 4, 1) < 0.35
        photo[mask] = np.where(bars[:, None], c * 0.6, photo[mask])
        # Ground: asphalt with lane markings, tiled sidewalk, grass.
        n, e, lat, d = at(road, noise, fine, lateral, depth)
        asphalt = rng.uniform(70, 110) * (0.9 + 0.15 * n) + 5 * e
        photo[road] = np.where(self._lane_marks(lat, d), 225.0, asphalt)[:, None]
        mask = labels == _ID["sidewalk"]
        lat, d, e = at(mask, lateral, depth, fine)
        tiles = (np.mod(lat, 1.0) < 0.05) | (np.mod(d, 1.0) < 0.05)
        pave = np.array(rng.uniform((150, 140, 140), (200, 190, 190)), np.float32)
        photo[mask] = pave * np.where(tiles, 0.8, 1.0)[:, None] + 4 * e[:, None]
        mask = labels == _ID["terrain"]
        leaf, e = at(mask, leaves, fine)
        photo[mask] = (
            np.array([110, 135, 60], np.float32) * (0.75 + 0.5 * leaf)[:, None] + 5 * e[:, None]
        )
        # Shadows cast across the ground by the buildings on the far side of the sun.
        shade_side = 1 if self.sun > 0 else 0
        d, lat = at(ground, depth, lateral)
        _, wall_h, *_ = self._lookup(shade_side, d)
        edge = self.facade[shade_side] - abs(self.sun) * wall_h
        shadow = np.zeros_like(ground)
        shadow[ground] = lat * (1 if shade_side else -1) > edge
        photo[shadow] *= 0.55
        solid = labels != _ID["sky"]
        amount = (1 - np.exp(-depth[solid] / 180.0))[:, None]  # Haze.
        photo[solid] = photo[solid] * (1 - amount) + self.haze * amount
        return labels, photo

    def _lane_marks(self, lateral, depth):
        dashed = (np.abs(lateral) < 0.08) & (np.mod(depth, 9.0) < 4.0)
        edges = np.zeros_like(dashed)
        for side, sign in ((0, -1), (1, 1)):
            edges |= np.abs(lateral - sign * (self.road[side] - 0.4)) < 0.07
        return dashed | edges

    def _sky(self):
        rng = self.rng
        top = np.array(rng.uniform((60, 110, 170), (120, 160, 215)), np.float32)
        t = np.clip(self.ys / max(self.vy, 1.0), 0, 1)[..., None]
        sky = top * (1 - t) + self.haze * t
        clouds = np.clip(
            (_smooth_noise(rng, self.height, self.width, 6) - rng.uniform(0.45, 0.7)) * 3, 0, 1
        )
        return sky * (1 - clouds[..., None]) + 240 * clouds[..., None]

    def objects(self):
        """(depth, kind, lateral, parameters) for every object in the scene."""
        rng, things = self.rng, []
        for _ in range(rng.integers(0, 7)):
            side = rng.integers(2)
            lane = rng.uniform(0.9, max(1.0, self.road[side] - 1.0)) * (1 if side else -1)
            things.append((rng.uniform(4, 70), "car", lane, rng.uniform(20, 230, 3)))
        for side in range(2):  # Rows of cars parked along the kerb.
            if rng.random() < 0.5:
                continue
            depth = rng.uniform(3, 12)
            while depth < 70:
                lane = (self.road[side] - 1.1) * (1 if side else -1)
                things.append((depth, "car", lane, rng.uniform(20, 230, 3)))
                depth += rng.uniform(5, 14)
        for _ in range(rng.integers(0, 6)):
            side = rng.integers(2)
            x = (self.road[side] + rng.uniform(0.4, self.walk[side])) * (1 if side else -1)
            things.append((rng.uniform(4, 45), "person", x, rng.uniform(20, 200, 3)))
        for side in range(2):
            x = (self.road[side] + 0.4) * (1 if side else -1)
            depth = rng.uniform(4, 20)
            while depth < 90:
                kind = rng.choice(("pole", "sign", "light", "tree", "tree"))
                things.append((depth, str(kind), x, rng.uniform(4, 7.5)))
                depth += rng.uniform(10, 30)
        return things

    def _box(self, depth, x0, x1, y0, y1):
        """Screen rows/columns of a world box [x0, x1] x [y0, y1] metres at `depth`."""
        fx, fy, h = self.focal_x, self.focal_y, _CAMERA_HEIGHT
        left, right = self.vx + fx * x0 / depth, self.vx + fx * x1 / depth
        top, bottom = self.vy + fy * (h - y1) / depth, self.vy + fy * (h - y0) / depth
        clip = lambda v, end: min(max(round(v), 0), end)  # noqa: E731
        rows = slice(clip(top, self.height), clip(bottom, self.height))
        return rows, slice(clip(left, self.width), clip(right, self.width))

    def draw(self, labels, photo, depth, kind, x, params):
        rng, noise = self.rng, None
        fog = 1 - np.exp(-depth / 180.0)

        def put(box, label, color, shade=True):
            rows, cols = box
            if rows.stop <= rows.start or cols.stop <= cols.start:
                return
            labels[rows, cols] = _ID[label]
            n = rows.stop - rows.start
            ramp = np.linspace(1.1, 0.85, n, dtype=np.float32)[:, None, None] if shade else 1.0
            value = np.asarray(color, np.float32) * ramp * (0.95 + 0.1 * rng.random((n, 1, 1)))
            photo[rows, cols] = value * (1 - fog) + self.haze * fog

        if kind == "car":
            shadow_rows, shadow_cols = self._box(depth, x - 1.1, x + 1.1, -0.25, 0.05)
            photo[shadow_rows, shadow_cols] *= 0.5
            put(self._box(depth, x - 0.9, x + 0.9, 0.25, 0.95), "car", params)
            put(self._box(depth, x - 0.75, x + 0.75, 0.95, 1.5), "car", params * 0.9)
            put(self._box(depth, x - 0.65, x + 0.65, 1.0, 1.42), "car", (50, 60, 75), False)
            for wheel in (x - 0.85, x + 0.55):
                put(self._box(depth, wheel, wheel + 0.3, 0.0, 0.35), "car", (20, 20, 20), False)
            for lamp in (x - 0.85, x + 0.6):
                put(self._box(depth, lamp, lamp + 0.25, 0.7, 0.82), "car", (200, 30, 30), False)
        elif kind == "person":
            put(self._box(depth, x - 0.22, x + 0.22, 0.0, 0.85), "person", params * 0.5)
            put(self._box(depth, x - 0.25, x + 0.25, 0.85, 1.45), "person", params)
            put(self._box(depth, x - 0.11, x + 0.11, 1.45, 1.72), "person", (205, 160, 130))
        elif kind == "tree":
            put(self._box(depth, x - 0.15, x + 0.15, 0.0, params * 0.6), "vegetation", (80, 60, 40))
            rows, cols = self._box(depth, x - 1.8, x + 1.8, params * 0.5, params + 1.2)
            if rows.stop > rows.start and cols.stop > cols.start:
                yy, xx = np.mgrid[rows, cols].astype(np.float32)
                cy, cx = (rows.start + rows.stop) / 2, (cols.start + cols.stop) / 2
                ry, rx = max((rows.stop - rows.start) / 2, 1), max((cols.stop - cols.start) / 2, 1)
                blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
                noise = rng.random(blob.shape, dtype=np.float32)
                labels[rows, cols][blob] = _ID["vegetation"]
                leaves = np.array([40, 90, 30], np.float32) * (0.5 + noise[..., None])
                patch = photo[rows, cols]
                patch[blob] = (leaves * (1 - fog) + self.haze * fog)[blob]
        else:
            put(self._box(depth, x - 0.08, x + 0.08, 0.0, params), "pole", (120, 120, 125))
            if kind == "sign":
                color = ((30, 70, 160), (200, 30, 30), (230, 230, 230))[rng.integers(3)]
                put(
                    self._box(depth, x - 0.35, x + 0.35, params - 0.7, params),
                    "traffic sign",
                    color,
                )
            elif kind == "light":
                put(
                    self._box(depth, x - 0.2, x + 0.2, params - 1.0, params),
                    "traffic light",
                    (30,) * 3,
                )
                lit = rng.integers(3)
                lamp_y = params - 0.3 - 0.3 * lit
                lamp = ((40, 220, 90), (250, 180, 20), (240, 40, 30))[lit]
                rows, cols = self._box(depth, x - 0.1, x + 0.1, lamp_y - 0.1, lamp_y + 0.1)
                photo[rows, cols] = lamp

    def hood(self, labels, photo):
        """The camera car's hood at the bottom of some frames (void, black label)."""
        if self.rng.random() < 0.4:
            return
        height, width = self.height, self.width
        bulge = 1 - ((self.xs - width / 2) / (0.9 * width)) ** 2 * 0.7
        hood = self.ys > height - self.rng.uniform(0.06, 0.12) * height * bulge
        labels[hood] = _ID["ego vehicle"]
        shine = np.clip(1 - np.abs(self.xs - width / 2) / (0.25 * width), 0, 1) * 60
        photo[hood] = (np.array([35, 38, 42], np.float32) + shine[..., None])[hood]

    def finish(self, photo):
        """Slight blur (a [1, 2, 1] / 4 kernel each way) and sensor noise: the photo's look."""
        image = np.clip(photo, 0, 255)
        padded = np.pad(image, ((1, 1), (1, 1), (0, 0)), mode="edge")
        image = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
        image = (image[:, :-2] + 2 * image[:, 1:-1] + image[:, 2:]) / 4
        image = image + 2.5 * self.rng.standard_normal(image.shape, dtype=np.float32)
        return np.clip(np.round(image), 0, 255).astype(np.uint8)
