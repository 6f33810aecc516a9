"""VideoSettings: how each frame of a video is inpainted, one frozen config for every video front end
(`edgefill video` and its VideoJob, the Python API's VideoInpainter, the benchmarks). Each field is
the `edgefill video` flag of the same name; the run's JSON report records them (`settings`).

The defaults, chosen on single_face.mp4 and face_noface.mov, never on the benchmark clip
(docs/video.md has the measurements):
- steps = 2 search steps per frame from the previous frame's z (2 and 4 steps gave the same hole
  PSNR and flicker; real time leaves ~40 ms a frame on a 2-core CPU).
- smooth = 0.6: the 64x64 result is smoothed in the hole with the previous frame's.
- box_smoothing = 0.15: the weight of a new detection. With the flow following the face between
  detections, a heavier smoothing of the detections costs no lag: flicker ratio 1.24 -> 1.00 on
  single_face.mp4.
- refine = True: the bundle's refiner (the one that sees the hole) raised hole PSNR and SSIM and
  lowered flicker on both clips.
- blend = "poisson": the 64x64 result is Poisson-blended into the crop's known pixels (its colours
  meet the frame's at the hole's edge) before the refiner: +0.33 dB hole PSNR on single_face.mp4
  and +0.36 dB on face_noface.mov, ~2 ms a face.
- flip_average = False: the refiner runs once per face, not averaged with its mirror image as the
  bundle's default is for still images: on the tuning clips the average lost hole PSNR (25.86 ->
  25.72 dB on single_face.mp4, 25.82 -> 25.72 on face_noface.mov; SSIM +0.0005, flicker a little
  lower) and cost a quarter of the frame rate.
- fallback_yaw = fallback_outside = 0.3 (aligned crops only: the Haar box and --box have no
  landmarks): a face turned further than fallback_yaw (align.turn: the nose tip's offset from the
  eyes' midpoint over the eye distance, ~0.5 tan(yaw)), or whose 64x64 crop has more than
  fallback_outside of its pixels outside the frame (align.outside_fraction), gets OpenCV Telea in
  its crop instead of the GAN fill (docs/video.md, "Turned faces and faces leaving the frame").
  None turns a check off.
- detector = "auto": the bundle's BlazeFace when the bundle has it, else OpenCV's Haar box.
- fill = "search" (the product); "telea" takes the hole's first fill from OpenCV Telea (radius 3)
  in the 64x64 crop instead of the latent search, then the same refiner and smoothing: on video
  what `edgefill evaluate` calls telea+refiner, so what the search adds stays in view.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from numbers import Integral

from ...core.starts import INITS
from ...errors import EdgefillError
from ...imaging.preprocess import parse_box

DETECTORS = ("auto", "blazeface", "haar")
FILLS = ("search", "telea")  # where the hole's first fill comes from (module docstring)
BLENDS = ("poisson", "paste")


@dataclass(frozen=True)
class VideoSettings:
    """box: a fixed face region (x, y, w, h) (or "x,y,w,h"); without it the face is found
    (face="auto", the default either way). steps: search steps per frame. frame_budget_ms: a per-frame deadline (the
    search stops once the frame has taken this long; None: no deadline). init: the start of a
    (re)started track (auto | random | encoder). previous: start from the previous frame's z.
    smooth: the previous result's weight in the hole, [0, 1). box_smoothing: a new detection's
    weight in the face box, (0, 1]. detect_every: detect every N frames. follow: move the box with
    the face's optical flow between detections. seed: seeds mask kinds and random starts. refine:
    run the bundle's refiner. flip_average: the refiner averaged with its mirror image. detector:
    auto | blazeface | haar. max_faces: faces per frame, each its own track (above 1 needs the
    bundle's detector). blend: poisson | paste. fill: search | telea. fallback_yaw,
    fallback_outside: the Telea fallback's thresholds (None: that check off). Bad values raise
    EdgefillError naming the flag."""

    box: tuple[int, int, int, int] | None = None
    face: str | None = None
    steps: int = 2
    frame_budget_ms: float | None = None
    init: str = "auto"
    previous: bool = True
    smooth: float = 0.6
    box_smoothing: float = 0.15
    detect_every: int = 3
    follow: bool = True
    seed: int = 0
    refine: bool = True
    flip_average: bool = False
    detector: str = "auto"
    max_faces: int = 1
    blend: str = "poisson"
    fill: str = "search"
    fallback_yaw: float | None = 0.3
    fallback_outside: float | None = 0.3

    def __post_init__(self):
        box = parse_box(self.box)
        if self.face is not None and self.face != "auto":
            raise EdgefillError(f"--face takes 'auto', got {self.face!r}")
        if box is not None and self.face is not None:
            raise EdgefillError("give --box x,y,w,h or --face auto, not both")
        object.__setattr__(self, "box", box)
        for flag, value, choices in (("--init", self.init, INITS), ("--detector", self.detector, DETECTORS),
                                     ("--blend", self.blend, BLENDS), ("--fill", self.fill, FILLS)):
            if value not in choices:
                raise EdgefillError(f"{flag} takes one of {', '.join(choices)}, got {value!r}")
        for flag, value in (("--steps", self.steps), ("--detect-every", self.detect_every),
                            ("--max-faces", self.max_faces)):
            if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
                raise EdgefillError(f"{flag} must be a whole number of at least 1, got {value}")
        if self.frame_budget_ms is not None and not self.frame_budget_ms > 0:
            raise EdgefillError(f"--frame-budget-ms must be positive, got {self.frame_budget_ms}")
        if not 0 <= self.smooth < 1:
            raise EdgefillError(f"--smooth must be in [0, 1), got {self.smooth}")
        if not 0 < self.box_smoothing <= 1:
            raise EdgefillError(f"--box-smoothing must be in (0, 1], got {self.box_smoothing}")
        if self.fallback_yaw is not None and not self.fallback_yaw >= 0:
            raise EdgefillError(f"--fallback-yaw must be >= 0, got {self.fallback_yaw}")
        if self.fallback_outside is not None and not 0 <= self.fallback_outside <= 1:
            raise EdgefillError(f"--fallback-outside must be in [0, 1], got {self.fallback_outside}")
        if self.max_faces > 1 and box is not None:
            raise EdgefillError("--max-faces above 1 needs --face auto and the bundle's face detector (landmarks); "
                                "--box is one region")
        if self.max_faces > 1 and self.detector == "haar":
            raise EdgefillError("--max-faces above 1 needs --face auto and the bundle's face detector (landmarks); "
                                "--detector haar follows one face")

    def replace(self, **changes) -> "VideoSettings":
        """A copy with `changes` (checked again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        """The fields as JSON-ready values (box a list; face "auto" whenever there is no box)."""
        d = asdict(self)
        d["box"] = list(self.box) if self.box is not None else None
        d["face"] = "auto" if self.box is None else None
        return d
