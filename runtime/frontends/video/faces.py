"""The face region of each frame: a fixed --box, or a detected face shaped like the model's crops.

Two trackers share the machinery below: AlignedTracker (the bundle's BlazeFace landmarks, an
eye-aligned crop through a similarity transform: video.align; the default when the bundle has a
detector) and FaceTracker (OpenCV's Haar box, the fallback), described first.

Detection: OpenCV 4.x's Haar frontal-face cascade (ships with opencv-python-headless<5, nothing to
download) on a frame downscaled to `detect_width` pixels, every `detect_every` frames (the box is
carried between detections). Of several faces, the one nearest the current track (else the
largest) is followed.

Crop geometry: the model was trained on CelebA's aligned 108x108 crops (the central 108x108 of the
178x218 aligned images, resized to 64x64). Measured with measure_crop_geometry on the last 400
faces of train.npz (371 detected; each upscaled to 256 px and padded): the crop's centre sits
CROP_DY = 0.142 face-widths ABOVE the Haar box's centre, horizontally centred (dx 0.002), and its
side is CROP_SIDE = 1.049 face-widths (medians; the 8 sample faces: 0.145 and 1.045). The square
is shifted, not shrunk, to stay inside the frame.

Between detections the track moves with the face: corners inside the crop are followed with
pyramidal Lucas-Kanade flow on the downscaled gray frame (forward-backward checked), and the
track shifts by their median motion (and scales by their median spread ratio, within 5% a
frame). Smoothing: at each detection, centre and side move towards it with an exponential moving
average (`smooth`, the weight of the new detection), so the crop does not jump with the
detector's jitter, and the flow keeps it from lagging behind a moving face. A
detection farther than `jump` box-sides from the track, or the first one after the face was lost,
restarts the track (`Region.restarted` = True: the temporal state resets). After `lost_after`
consecutive detections without a face the track ends: frames pass through untouched (a face
missed for a detection or two, behind a hand, keeps its box). A scene cut (the correlation of
consecutive frames' 32-bin gray histograms below CUT_CORRELATION = 0.5; measured: 0.11 and -0.25
at face_noface.mov's cut, >= 0.988 between any other consecutive frames of the four shared
clips) ends the track at once and detects again on that frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...errors import EdgefillError

CROP_DY = 0.142
CROP_SIDE = 1.049
CUT_CORRELATION = 0.5  # gray-histogram correlation between consecutive frames below this: a scene cut


@dataclass
class Region:
    """box: (x, y, w, h) ints inside the frame, or None (no face: pass the frame through);
    restarted: the track (re)started at this frame (a new face, a jump, or the first frame);
    transform: float64 (2,3) frame -> 64x64 crop similarity (AlignedTracker), or None (the crop
    is `box`, resized); points: the smoothed keypoints it was fitted to (frame pixels); track_id:
    which face (MultiFaceTracker; 0 otherwise)."""

    box: tuple[int, int, int, int] | None
    restarted: bool
    transform: np.ndarray | None = None
    points: np.ndarray | None = None
    track_id: int = 0


def crop_from_face(face: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """Haar box (x, y, w, h) -> the CelebA-shaped square as (centre x, centre y, side)."""
    x, y, w, h = face
    return x + w / 2, y + h / 2 - CROP_DY * w, CROP_SIDE * w


def measure_crop_geometry(faces64: np.ndarray, size: int = 256) -> dict:
    """Where the model's crop sits relative to the Haar box, measured on model-sized faces (uint8
    (N,64,64,3) RGB CelebA crops): each face is upscaled to `size` px, padded by half its size
    (replicated edges, so a Haar box reaching past the crop is still found), and the largest Haar
    face is compared with the known crop. Returns medians in face-widths: dy (crop centre ABOVE
    the box centre), dx (crop centre right of it), side (crop side), and n / found counts.
    `python benchmarks/bench_video.py --measure-crop train.npz` prints it (CROP_DY, CROP_SIDE)."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    pad = size // 2
    rows = []
    for face in np.asarray(faces64):
        big = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        gray = cv2.equalizeHist(cv2.cvtColor(big, cv2.COLOR_RGB2GRAY))
        found = cascade.detectMultiScale(gray, 1.1, 5, minSize=(size // 4, size // 4))
        if len(found):
            x, y, w, h = max(found, key=lambda f: f[2])
            centre = pad + size / 2
            rows.append(((y + h / 2 - centre) / w, (centre - (x + w / 2)) / w, size / w))
    if not rows:
        return {"n": len(faces64), "found": 0, "dy": None, "dx": None, "side": None}
    med = np.median(np.array(rows), axis=0)
    return {"n": int(len(faces64)), "found": len(rows), "dy": float(med[0]), "dx": float(med[1]), "side": float(med[2])}


def square_box(cx: float, cy: float, side: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """A square around (cx, cy), shifted (not shrunk) to stay inside the frame where it fits."""
    s = int(round(min(side, width, height)))
    if s < 8:
        return None
    x = int(round(min(max(cx - s / 2, 0), width - s)))
    y = int(round(min(max(cy - s / 2, 0), height - s)))
    return x, y, s, s


class FixedRegion:
    """--box x,y,w,h: the same region every frame (checked against the frame size once)."""

    def __init__(self, box: tuple[int, int, int, int], width: int, height: int):
        x, y, w, h = box
        if w < 4 or h < 4 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise EdgefillError(f"--box {x},{y},{w},{h} is not inside the {width}x{height} frame")
        self.box = box
        self._first = True

    def __call__(self, index: int, image: np.ndarray) -> Region:
        restarted, self._first = self._first, False
        return Region(self.box, restarted)


class FaceTracker:
    """--face auto (module docstring). Call with (frame index, RGB uint8 (H,W,3) frame) in order.

    detect_every: run the cascade every N frames (every frame while no face is tracked);
    detect_width: the width of the downscaled gray frame used for detection and tracking;
    smooth: weight of a new detection in the track (1.0 = the raw detector box, no smoothing);
    follow: move the track between detections with the face's own motion (sparse optical flow);
    jump: a detection farther than this many crop sides from the track restarts it;
    lost_after: consecutive detections without a face before the track ends."""

    def __init__(self, detect_every: int = 3, detect_width: int = 320, smooth: float = 0.3, jump: float = 0.5,
                 lost_after: int = 3, min_face: int = 24, scale_factor: float = 1.1, min_neighbors: int = 5,
                 follow: bool = True):
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise EdgefillError("--face auto needs OpenCV 4.x with its Haar cascades (opencv-python-headless<5)")
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        if self.cascade.empty():
            raise EdgefillError("the Haar frontal-face cascade did not load")
        if not 0 < smooth <= 1:
            raise EdgefillError(f"--box-smoothing must be in (0, 1], got {smooth}")
        self.detect_every, self.detect_width = max(1, int(detect_every)), int(detect_width)
        self.smooth, self.jump, self.lost_after, self.follow = float(smooth), float(jump), int(lost_after), follow
        self.min_face, self.scale_factor, self.min_neighbors = min_face, scale_factor, min_neighbors
        self.track: np.ndarray | None = None  # (cx, cy, side) in full-frame pixels
        self.misses = 0
        self.detections = 0
        self._gray: np.ndarray | None = None  # the previous downscaled gray frame
        self._points: np.ndarray | None = None  # float32 (P,1,2) face features in it
        self._scale = 1.0  # downscaled / full-frame pixels
        self._hist: np.ndarray | None = None
        self.cuts = 0

    def _small_gray(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        self._scale = min(1.0, self.detect_width / w)
        small = cv2.resize(image, (max(1, int(round(w * self._scale))), max(1, int(round(h * self._scale)))),
                           interpolation=cv2.INTER_AREA) if self._scale < 1 else image
        return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)

    def detect(self, image: np.ndarray, gray: np.ndarray | None = None) -> list[tuple[float, float, float, float]]:
        """Haar faces (x, y, w, h) in full-frame pixels, found on a downscaled, equalised copy."""
        gray = self._small_gray(image) if gray is None else gray
        found = self.cascade.detectMultiScale(cv2.equalizeHist(gray), self.scale_factor, self.min_neighbors,
                                              minSize=(self.min_face, self.min_face))
        self.detections += 1
        return [tuple(float(v) / self._scale for v in f) for f in found]

    def _seed_points(self, gray: np.ndarray) -> None:
        """Corners inside the central 80% of the tracked crop (the face, little background)."""
        cx, cy, side = self.track * self._scale
        half = 0.4 * side
        region = np.zeros_like(gray)
        x0, y0 = max(0, int(cx - half)), max(0, int(cy - half))
        x1, y1 = min(gray.shape[1], int(cx + half)), min(gray.shape[0], int(cy + half))
        if x1 - x0 < 4 or y1 - y0 < 4:
            self._points = None
            return
        region[y0:y1, x0:x1] = 255
        self._points = cv2.goodFeaturesToTrack(gray, maxCorners=40, qualityLevel=0.01, minDistance=4, mask=region)

    def _follow(self, gray: np.ndarray) -> None:
        """Move the track with the median motion (and scale) of its features from the previous frame."""
        if self._gray is None or self._points is None or len(self._points) < 4 or self._gray.shape != gray.shape:
            self._points = None
            return
        p0 = self._points
        p1, st, _ = cv2.calcOpticalFlowPyrLK(self._gray, gray, p0, None, winSize=(15, 15), maxLevel=2)
        back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, self._gray, p1, None, winSize=(15, 15), maxLevel=2)
        good = (st[:, 0] == 1) & (st2[:, 0] == 1) & (np.linalg.norm((p0 - back)[:, 0], axis=1) < 1.0)
        if good.sum() < 4:
            self._points = None
            return
        a, b = p0[good, 0], p1[good, 0]
        shift = np.median(b - a, axis=0)
        scale = 1.0
        if len(a) >= 8:
            da = np.linalg.norm(a - np.median(a, axis=0), axis=1)
            db = np.linalg.norm(b - np.median(b, axis=0), axis=1)
            ok = da > 2.0
            if ok.sum() >= 6:
                scale = float(np.clip(np.median(db[ok] / da[ok]), 0.95, 1.05))
        self.track = self.track + np.array([shift[0] / self._scale, shift[1] / self._scale, 0.0])
        self.track[2] *= scale
        self._points = p1[good].reshape(-1, 1, 2)

    def _cut(self, gray: np.ndarray) -> bool:
        """Whether this frame starts a new shot (module docstring)."""
        hist = cv2.calcHist([gray], [0], None, [32], [0, 256])
        cv2.normalize(hist, hist)
        cut = self._hist is not None and cv2.compareHist(self._hist, hist, cv2.HISTCMP_CORREL) < CUT_CORRELATION
        self._hist = hist
        return bool(cut)

    # What a tracker tracks: FaceTracker the crop (cx, cy, side) itself, AlignedTracker the
    # detector's keypoints (the crop follows from them). __call__'s rules are the same for both.
    def _state(self) -> np.ndarray | None:
        return self.track

    def _set_state(self, state: np.ndarray) -> None:
        self.track = state

    def _drop(self) -> None:
        self.track, self._points = None, None

    def _found(self, image: np.ndarray, gray: np.ndarray) -> list[np.ndarray]:
        """This frame's detections as states (here: crops from the Haar boxes)."""
        return [np.array(crop_from_face(f)) for f in self.detect(image, gray)]

    @staticmethod
    def _size(state: np.ndarray) -> float:
        return float(state[2])

    @staticmethod
    def _centre(state: np.ndarray) -> np.ndarray:
        return state[:2]

    def _follow_state(self, gray: np.ndarray) -> None:
        self._follow(gray)

    def _region(self, width: int, height: int, restarted: bool) -> Region:
        if self.track is None:
            return Region(None, False)
        box = square_box(*self.track, width, height)
        return Region(box, restarted if box is not None else False)

    def __call__(self, index: int, image: np.ndarray) -> Region:
        height, width = image.shape[:2]
        gray = self._small_gray(image)
        restarted = False
        if self._cut(gray):
            self.cuts += 1
            self._drop()
            self.misses = 0
        if self._state() is not None and self.follow:
            self._follow_state(gray)
        if self._state() is None or index % self.detect_every == 0:
            found, current = self._found(image, gray), self._state()
            if found:
                if current is None:
                    new = max(found, key=self._size)
                else:
                    new = min(found, key=lambda c: np.linalg.norm(self._centre(c) - self._centre(current)))
                if current is None or (np.linalg.norm(self._centre(new) - self._centre(current))
                                       > self.jump * self.track[2]):
                    self._set_state(new)
                    restarted = True
                else:
                    self._set_state((1 - self.smooth) * current + self.smooth * new)
                self.misses = 0
                if self.follow:
                    self._seed_points(gray)
            elif current is not None:
                self.misses += 1
                if self.misses >= self.lost_after:
                    self._drop()
        elif self.follow and self._points is None:
            self._seed_points(gray)
        self._gray = gray
        return self._region(width, height, restarted)


class AlignedTracker(FaceTracker):
    """--face auto with a bundle that has a detector: the same tracking as FaceTracker (detection
    every `detect_every` frames, optical flow in between, smoothing, jumps, misses, scene cuts),
    but the track is the detector's keypoints (eyes, nose tip, mouth; video.align.ALIGN_POINTS),
    smoothed over time like the box (each detection pulls them `smooth` of the way; the flow moves
    and scales them between), and each frame's crop is the similarity transform of the smoothed
    keypoints onto the template (video.align). detector: callable(RGB frame) -> [blazeface.Face],
    best first; template: float (4,2) crop positions of ALIGN_POINTS."""

    def __init__(self, detector, template, **kw):
        super().__init__(**kw)
        from .align import ALIGN_POINTS

        self.detector = detector
        self.template = np.asarray(template, np.float64)
        self.align_points = ALIGN_POINTS
        self.points: np.ndarray | None = None  # (4,2) smoothed keypoints, full-frame pixels

    def detect_points(self, image: np.ndarray) -> list[np.ndarray]:
        self.detections += 1
        return [np.asarray(f.keypoints, np.float64)[list(self.align_points)] for f in self.detector(image)]

    def _crop_of(self, points: np.ndarray) -> np.ndarray:
        """(cx, cy, side) of the crop square the points map to (what flow seeding and jumps use)."""
        from .align import crop_corners, similarity

        c = crop_corners(similarity(points, self.template))
        return np.array([c[:, 0].mean(), c[:, 1].mean(), np.linalg.norm(c[1] - c[0])])

    def _state(self) -> np.ndarray | None:
        return self.points

    def _set_state(self, state: np.ndarray) -> None:
        self.points, self.track = state, self._crop_of(state)

    def _drop(self) -> None:
        self.track, self.points, self._points = None, None, None

    def _found(self, image: np.ndarray, gray: np.ndarray) -> list[np.ndarray]:
        return self.detect_points(image)

    @staticmethod
    def _size(points: np.ndarray) -> float:
        return float(np.linalg.norm(points[1] - points[0]))  # the eyes' distance

    @staticmethod
    def _centre(points: np.ndarray) -> np.ndarray:
        return points[:2].mean(0)  # the eyes' midpoint

    def _follow_state(self, gray: np.ndarray) -> None:
        self._follow_points(self, gray)

    @staticmethod
    def _follow_points(t, gray: np.ndarray) -> None:
        """The flow moves and scales t's crop; its keypoints go with it (t: this tracker or a _Track)."""
        before = t.track.copy()
        FaceTracker._follow(t, gray)
        shift, scale = t.track[:2] - before[:2], t.track[2] / before[2]
        t.points = before[:2] + scale * (t.points - before[:2]) + shift

    def _region(self, width: int, height: int, restarted: bool) -> Region:
        from .align import crop_box, similarity

        if self.points is None:
            return Region(None, False)
        m = similarity(self.points, self.template)
        box = crop_box(m, width, height)
        if box is None:
            return Region(None, False)
        return Region(box, restarted, transform=m, points=self.points.copy())


class _Track:
    """One face of MultiFaceTracker: the same state FaceTracker/AlignedTracker keep for their one
    face (FaceTracker._follow and _seed_points run on it)."""

    def __init__(self, ident: int, points: np.ndarray, crop: np.ndarray, scale: float):
        self.id = ident
        self.points = points
        self.track = crop
        self._points = None
        self._gray = None
        self._scale = scale
        self.misses = 0
        self.restarted = True


class MultiFaceTracker(AlignedTracker):
    """--max-faces N (N > 1; needs the bundle's detector): every face of the frame, up to N, each
    its own track with its own smoothing, flow following, misses and restarts (AlignedTracker's
    rules, per face). At a detection, each track takes the nearest unclaimed face within `jump`
    crop sides of it (tracks in order of age); a track that finds none misses; a face nobody
    claimed starts a new track while fewer than N are alive (the largest first); with no room, it
    restarts the nearest track that missed (one face jumping, as for N = 1). Returns a list of
    Regions (region.track_id set), in track order; a scene cut ends every track."""

    def __init__(self, detector, template, max_faces: int = 2, **kw):
        super().__init__(detector, template, **kw)
        self.max_faces = int(max_faces)
        self.tracks: list[_Track] = []
        self._next_id = 0

    def __call__(self, index: int, image: np.ndarray) -> list[Region]:
        from .align import crop_box, similarity

        height, width = image.shape[:2]
        gray = self._small_gray(image)
        if self._cut(gray):
            self.cuts += 1
            self.tracks = []
        for t in self.tracks:
            t.restarted = False
            if self.follow:
                t._gray, t._scale = self._gray, self._scale
                self._follow_points(t, gray)
        if not self.tracks or index % self.detect_every == 0:
            found = self.detect_points(image)
            centre = self._centre
            free = list(range(len(found)))
            missed = []
            for t in self.tracks:
                near = [(np.linalg.norm(centre(found[i]) - centre(t.points)), i) for i in free]
                near = [(d, i) for d, i in near if d <= self.jump * t.track[2]]
                if near:
                    _, i = min(near)
                    free.remove(i)
                    t.points = (1 - self.smooth) * t.points + self.smooth * found[i]
                    t.track, t.misses = self._crop_of(t.points), 0
                    if self.follow:
                        FaceTracker._seed_points(t, gray)
                else:
                    t.misses += 1
                    missed.append(t)
            for i in sorted(free, key=lambda i: -self._size(found[i])):
                new = found[i]
                if len(self.tracks) < self.max_faces:
                    t = _Track(self._next_id, new, self._crop_of(new), self._scale)
                    self._next_id += 1
                    self.tracks.append(t)
                elif missed:
                    t = min(missed, key=lambda t: np.linalg.norm(centre(new) - centre(t.points)))
                    missed.remove(t)
                    t.points, t.track, t.misses, t.restarted, t._points = new, self._crop_of(new), 0, True, None
                else:
                    continue
                if self.follow:
                    FaceTracker._seed_points(t, gray)
            self.tracks = [t for t in self.tracks if t.misses < self.lost_after]
        elif self.follow:
            for t in self.tracks:
                if t._points is None:
                    FaceTracker._seed_points(t, gray)
        self._gray = gray
        regions = []
        for t in self.tracks:
            t._gray = gray
            m = similarity(t.points, self.template)
            box = crop_box(m, width, height)
            if box is not None:
                regions.append(Region(box, t.restarted, transform=m, points=t.points.copy(), track_id=t.id))
        return regions
