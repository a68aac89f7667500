"""``RUN_DIR/metrics/``: one Parquet row per decoded frame (paper, appendix A.1 measures).

Written by ``gaia curate measure``, one file per video (``metrics/{video_id}.parquet``), read
by ``gaia curate tune`` and ``extract`` without decoding again. Columns that need a face are
null where no face was found; jitter is null on the first frame of a face track. Coordinates
are pixels of the source video (not of the shrunk copy the detector saw).
"""

from __future__ import annotations

import pyarrow as pa

METRICS_VERSION = 1
# LZ4 rather than zstd: files about 20 % larger, but tune reads them 2-3x faster, and tune
# re-reads the whole corpus's measures every time a threshold moves.
METRICS_COMPRESSION = "lz4"

_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("video_id", pa.string(), "the video's stable id (see videos.parquet)"),
    ("frame_index", pa.int32(), "0-based index of the frame in decode order"),
    ("time_s", pa.float64(), "presentation time of the frame, seconds (true time, also for VFR)"),
    ("num_faces", pa.int8(), "faces found by the last detection (carried between detections)"),
    ("detected", pa.bool_(), "whether the detector ran on this frame (else the face was tracked)"),
    ("face_box", pa.list_(pa.float32(), 4), "main (largest) face: x0, y0, x1, y1 in pixels"),
    ("landmarks", pa.list_(pa.list_(pa.float32(), 2), 68), "68 x (x, y), iBUG 300-W order"),
    ("pitch_deg", pa.float32(), "head pitch by PnP on the landmarks; > 0 looks down"),
    ("yaw_deg", pa.float32(), "head yaw; > 0 turns toward the image's right"),
    ("roll_deg", pa.float32(), "head roll; > 0 tilts clockwise in the image"),
    ("frontal_angle_deg", pa.float32(),
     "angle(nose->left outer eye corner) + angle(nose->right), against the horizontal through "
     "the nose; 180 for a frontal upright face"),
    ("jitter_landmarks", pa.float32(),
     "mean landmark displacement from the previous frame / inter-ocular distance"),
    ("jitter_box", pa.float32(),
     "max(face-box centre shift, size change) from the previous frame / box size"),
    ("occlusion", pa.float32(),
     "share of the lower face (mouth and chin, lips excluded) whose colour is not the upper "
     "face's skin; a mask drives it toward 1"),
    ("mouth_open", pa.float32(), "inner-lip opening / mouth width"),
    ("speech_prob", pa.float32(), "silero VAD speech probability at the frame's time; null: no audio"),
]

METRICS_SCHEMA = pa.schema(
    [pa.field(name, kind, metadata={"doc": doc}) for name, kind, doc in _FIELDS],
    metadata={"gaia.metrics.version": str(METRICS_VERSION)},
)

COLUMN_DOCS: dict[str, str] = {name: doc for name, _, doc in _FIELDS}
