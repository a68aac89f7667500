"""``RUN_DIR/metrics/``: one Parquet row per decoded frame (paper, appendix A.1 measures).

Written by ``gaia curate measure``, one file per video (``metrics/{video_id}.parquet``), read
by ``gaia curate tune`` and ``extract`` without decoding again. Columns that need a face are
null where no face was found; jitter is null on the first frame of a face track. Coordinates
are pixels of the source video (not of the shrunk copy the detector saw).
"""

from __future__ import annotations

import pyarrow as pa

METRICS_VERSION = 5  # 2: frontal angle on the eye line, jitter per 1/25 s, detector boxes,
# sync, sharpness, cuts, identity; 3: hand_cover, track; 4: sync_agreement, SyncNet's columns;
# 5: frame_hash (duplicate footage)
# LZ4 rather than zstd: files about 20 % larger, but tune reads them 2-3x faster, and tune
# re-reads the whole corpus's measures every time a threshold moves.
METRICS_COMPRESSION = "lz4"

_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("video_id", pa.string(), "the video's stable id (see videos.parquet)"),
    ("frame_index", pa.int32(), "0-based index of the frame in decode order"),
    ("time_s", pa.float64(), "presentation time of the frame, seconds (true time, also for VFR)"),
    ("num_faces", pa.int8(), "faces found by the last detection (carried between detections)"),
    ("detected", pa.bool_(), "whether the detector ran on this frame (else the face was tracked)"),
    ("scanned", pa.bool_(), "whether a full-frame scan ran on this frame (it sets num_faces)"),
    ("face_box", pa.list_(pa.float32(), 4),
     "main (largest) face: x0, y0, x1, y1 in pixels; the detector's box where it ran, else "
     "the tracked landmarks' box in the detector's shape"),
    ("face_px", pa.float32(), "width of the face box in source pixels"),
    ("landmarks", pa.list_(pa.list_(pa.float32(), 2), 68),
     "68 x (x, y), iBUG 300-W order, sub-pixel"),
    ("pitch_deg", pa.float32(), "head pitch by PnP on the landmarks; > 0 looks down"),
    ("yaw_deg", pa.float32(), "head yaw; > 0 turns toward the image's right"),
    ("roll_deg", pa.float32(), "head roll; > 0 tilts clockwise in the image"),
    ("frontal_angle_deg", pa.float32(),
     "angle(nose->right outer eye corner) + angle(nose->left), each against the line through "
     "the two outer eye corners: 180 for a frontal face whatever its roll"),
    ("frontal_angle_image_deg", pa.float32(),
     "the same sum against the image's horizontal (the paper's literal reading: roll counts "
     "twice)"),
    ("jitter_landmarks", pa.float32(),
     "mean landmark displacement from the previous frame / inter-ocular distance, per 1/25 s "
     "(the per-frame value times fps / 25)"),
    ("jitter_box", pa.float32(),
     "max(face-box centre shift, size change) from the previous frame / box size, per 1/25 s"),
    ("occlusion", pa.float32(),
     "share of the lower face (mouth and chin, lips excluded) whose colour is not the upper "
     "face's skin; a mask drives it toward 1"),
    ("hand_cover", pa.float32(),
     "share of the lower face (mouth, lips, chin) covered by a hand (MediaPipe palm and hand "
     "landmarks); 0 with no hand near the face; null where no face or hands were not looked for"),
    ("sharpness", pa.float32(), "focus of the face crop at a fixed size (see face.sharpness)"),
    ("cut_score", pa.float32(),
     "colour-histogram change from the previous frame (see media.shot_cut); null on frame 0"),
    ("identity_distance", pa.float32(),
     "face-embedding distance to the track's previous embedding (dlib ResNet; > 0.6 is "
     "another person); null where no embedding was taken"),
    ("person", pa.int16(), "per-video identity id of the face (-1: none)"),
    ("track", pa.int32(),
     "id of the face track the measures were taken on: a new id whenever a scan picks a face "
     "that does not continue the current track (cut, lost track); -1: no face"),
    ("mouth_open", pa.float32(), "inner-lip opening / mouth width"),
    ("mouth_motion", pa.float32(), "|change of mouth_open| per 1/25 s, smoothed"),
    ("speech_prob", pa.float32(),
     "silero VAD speech probability at the frame's time on the video's clock; null: no audio"),
    ("speech_env", pa.float32(), "log RMS energy of the speech at the frame; null: no audio"),
    ("sync_offset_frames", pa.float32(),
     "audio-visual offset of the window around the frame: mouth motion against the speech "
     "envelope, best lag in frames (> 0: audio late)"),
    ("sync_confidence", pa.float32(), "how much that lag stands out (see filters.av_sync)"),
    ("sync_agreement", pa.float32(),
     "share of the 3 s around the frame whose sync lag agrees with its median lag "
     "(filters.av_sync.lag_agreement): high where the visible mouth makes the speech"),
    ("syncnet_offset_frames", pa.float32(),
     "SyncNet (syncnet_v2) offset of the window around the frame, frames (> 0: audio late); "
     "null: no SyncNet weights given to measure"),
    ("syncnet_lag_frames", pa.float32(), "|syncnet_offset_frames|, what the lip_sync filter "
     "bounds"),
    ("syncnet_confidence", pa.float32(),
     "SyncNet confidence of that offset (median minus least distance; LatentSync keeps >= 3)"),
    ("frame_hash", pa.int64(),
     "64-bit difference hash of the whole frame (media.frame_hash): equal or a few bits apart "
     "in a re-encoded, rescaled or cut copy of the same footage"),
]

# Columns added after version 1, with the version that added them: a run measured before reads
# them as null (the measure was not taken), so its thresholds can still be tuned.
ADDED_IN = {"hand_cover": 3, "track": 3, "sync_agreement": 4, "syncnet_offset_frames": 4,
            "syncnet_lag_frames": 4, "syncnet_confidence": 4, "frame_hash": 5}

METRICS_SCHEMA = pa.schema(
    [pa.field(name, kind, metadata={"doc": doc}) for name, kind, doc in _FIELDS],
    metadata={"gaia.metrics.version": str(METRICS_VERSION)},
)
