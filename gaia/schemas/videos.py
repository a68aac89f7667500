"""``RUN_DIR/videos.parquet``: one row per input, whatever became of it (ground rule 5).

``status`` is ``ok`` (measured; ``metrics/{video_id}.parquet`` exists) or ``failed`` (nothing
measured). ``reason`` is one short code; ``flags`` lists every notable condition of a measured
video, so a filter or a person can find, say, all videos without audio.
"""

from __future__ import annotations

import math

import pyarrow as pa

from gaia.schemas.cues import CUE_FIELDS
from gaia.schemas.shards import FPS

# Reason codes. ``ok`` videos carry the first flag that applies, or "ok".
FAILED_REASONS: dict[str, str] = {
    "empty_file": "the file has zero bytes",
    "not_found": "the path does not exist or cannot be read",
    "not_a_video": "no decodable video stream (not a video, or a container ffmpeg cannot open)",
    "decode_error": "the video stream broke before any frame could be measured",
    "timeout": "decoding or measuring stalled or ran past the per-video time limit",
    "crashed": "the measuring process died (a crash in a decoder or a model)",
    "error": "an unexpected error; see the error column",
}
OK_FLAGS: dict[str, str] = {
    "truncated": "fewer frames decoded than the container announced",
    "too_short": "shorter than the minimum clip length, so no segment can come from it",
    "no_face": "no face found in any frame",
    "multiple_faces": "more than one face in over half of the frames with a face",
    "no_audio": "no audio track, or an unreadable one (speech measures are null)",
    "vfr": "variable frame rate (time_s holds true presentation times)",
    "downscaled": "measured on a shrunk copy (its size chosen from the faces' size)",
    "av_offset": "the audio and video streams start at different times (reconciled)",
    "frame_errors": "a face model refused some frames; they count as faceless (see error)",
}

_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("video_id", pa.string(), "stable id: sanitised file stem + hash of the path"),
    ("path", pa.string(), "the input path or URI as resolved"),
    ("source", pa.string(), "the input's parent folder (grouping for funnels and splits)"),
    ("status", pa.string(), "ok or failed"),
    ("reason", pa.string(), "short code: a failure reason, the first flag, or ok"),
    ("error", pa.string(), "what went wrong and what to do, for a person; empty when ok"),
    ("flags", pa.list_(pa.string()), "every condition noted on a measured video"),
    ("duration_s", pa.float64(), "time of the last frame plus one frame period"),
    ("fps", pa.float64(), "average frame rate"),
    ("width", pa.int32(), "source width in pixels"),
    ("height", pa.int32(), "source height in pixels"),
    ("num_frames", pa.int64(), "frames measured (one metrics row each)"),
    ("frames_with_face", pa.int64(), "frames where a face was found"),
    ("has_audio", pa.bool_(), "whether an audio track was decoded"),
    ("av_offset_s", pa.float64(),
     "audio stream start minus video stream start, from the container's pts (edit lists, "
     "AAC priming); measures put the audio on the video's clock by it"),
    ("sync_offset_s", pa.float64(),
     "median audio-visual offset measured from the mouth and the speech over confident "
     "windows (> 0: audio late); null when no window was confident"),
    ("face_px", pa.float64(), "largest face width the pre-scan found, source pixels"),
    ("analysis_side", pa.int32(), "longer side of the frames measured (sized to the face)"),
    ("persons", pa.int32(), "distinct identities seen in the video (face embeddings)"),
    ("person_embeddings", pa.list_(pa.list_(pa.float32(), 128)),
     "each person's mean face embedding (dlib ResNet, 128-d), in person id order: what the "
     "run-wide identities cluster (pipeline.identities); null: measured without them"),
    ("person_tracks", pa.list_(pa.int32()),
     "how many face tracks' embeddings each person's mean holds"),
    ("person_first_frames", pa.list_(pa.int64()),
     "the frame where each person was first embedded: a picture of them for a person"),
    ("size_bytes", pa.int64(), "input size"),
    ("elapsed_s", pa.float64(), "wall time spent on this video"),
    ("cpu_s", pa.float64(), "CPU time spent on this video (all threads of the worker)"),
    *CUE_FIELDS,  # the video's timed-text sidecar and its cues (schemas.cues, appendix E)
]

VIDEOS_SCHEMA = pa.schema(
    [pa.field(name, kind, metadata={"doc": doc}) for name, kind, doc in _FIELDS]
)


def empty_record(video_id: str, path: str, source: str) -> dict:
    """A row with every column present, to be filled in by the measuring code."""
    row: dict = {name: None for name in VIDEOS_SCHEMA.names}
    row.update(video_id=video_id, path=path, source=source, flags=[], error="")
    return row


def video_fps(fps: float | None) -> float:
    """The frame rate a measured video is decided at: its own (``fps`` column), or the shard
    rate (``FPS``) where the container announced none. The one fallback every job uses."""
    return float(fps) if fps is not None and math.isfinite(fps) and fps > 0 else float(FPS)
