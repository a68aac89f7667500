"""Cut one video's kept segments into shard samples (DESIGN.md section 5).

Paper, section 4 and appendix A.1: each clip is 256 x 256 around the head, 25 fps, with 16 kHz
mono audio (loudness-normalised, optionally denoised), speech features two per video frame,
and 68 landmarks (crop pixels) and head pose per frame. Only the segments' frames are decoded;
the audio track is read once for all of a video's segments. Landmarks and pose come from the
stored measures (``metrics/``), resampled to 25 fps by the same frame choice as the pixels, so
every stream is aligned by construction.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gaia.common.crop import CropConfig, clip_box, crop_frame, to_crop_pixels
from gaia.filters.segments import Segment
from gaia.pipeline.media.decode import AUDIO_RATE, audio_blocks
from gaia.pipeline.speech.denoise import Denoiser
from gaia.pipeline.speech.features import SpeechFeatureExtractor
from gaia.schemas.shards import dump_npy

OUT_FPS = 25.0
SAMPLES_PER_FRAME = int(AUDIO_RATE / OUT_FPS)  # 640


@dataclass(frozen=True)
class ClipJob:
    """One segment of one video to extract, with everything the sample's JSON records."""

    key: str
    video_id: str
    path: str
    identity: str
    split: str
    index: int
    segment: Segment


def output_frames(segment: Segment) -> int:
    """Frames of the clip at 25 fps (the segment's length, rounded down to whole frames)."""
    return int(np.floor(segment.duration_s * OUT_FPS + 1e-6))


def source_indices(times_s: np.ndarray, segment: Segment) -> np.ndarray:
    """For each 25 fps output frame, the source frame shown at that moment."""
    wanted = segment.start_s + np.arange(output_frames(segment)) / OUT_FPS
    seg_times = times_s[segment.start:segment.stop]
    picks = np.searchsorted(seg_times, wanted + 1e-6, side="right") - 1
    return segment.start + np.clip(picks, 0, len(seg_times) - 1)


def read_audio_spans(path: str, spans: list[tuple[float, float]]) -> list[np.ndarray | None]:
    """16 kHz mono audio of each ``(start_s, samples)`` span, from one pass over the track.

    Only the spans' samples are kept, so memory follows the clips, not the video's length.
    None for every span when the file has no audio track.
    """
    wanted = [(int(round(start * AUDIO_RATE)), int(count)) for start, count in spans]
    out: list[np.ndarray | None] = [np.zeros(count, np.float32) for _, count in wanted]
    position = 0
    seen = False
    for block in audio_blocks(path, block_s=10.0):
        seen = True
        block_end = position + len(block)
        for i, (first, count) in enumerate(wanted):
            lo, hi = max(first, position), min(first + count, block_end)
            if lo < hi:
                out[i][lo - first:hi - first] = block[lo - position:hi - position]
        position = block_end
        if all(first + count <= position for first, count in wanted):
            break
    return out if seen else [None] * len(wanted)


def _flac(audio: np.ndarray) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, audio, AUDIO_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def _mp4(frames: list[np.ndarray]) -> bytes:
    from gaia.pipeline.media.video_writer import write_video

    with tempfile.TemporaryDirectory(prefix="gaia-clip-") as folder:
        path = write_video(Path(folder) / "clip.mp4", frames, OUT_FPS)
        return path.read_bytes()


@dataclass
class AudioChain:
    """What turns a clip's raw audio into its sample streams (see ``pipeline.extract.job``)."""

    normalize: Callable[[np.ndarray], np.ndarray]  # loudness, after denoising
    denoiser: Denoiser
    features: SpeechFeatureExtractor


def extract_video(jobs: list[ClipJob], metrics_file: Path, audio: AudioChain,
                  crop: CropConfig, base_json: dict) -> Iterator[dict]:
    """Yield one row per clip: ``{"key", "status", "error", "members"}`` (members: name->bytes).

    A clip that fails (decode error, no face box) yields status ``failed`` with the reason; the
    others still come out.
    """
    import decord

    columns = ["time_s", "face_box", "landmarks", "pitch_deg", "yaw_deg", "roll_deg"]
    table = pq.read_table(metrics_file, columns=columns)
    times = table.column("time_s").to_numpy()
    boxes = _fixed(table.column("face_box"), (4,))
    landmarks = _fixed(table.column("landmarks"), (68, 2))
    pose = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
                     for c in ("pitch_deg", "yaw_deg", "roll_deg")], axis=1)
    spans = [(job.segment.start_s, output_frames(job.segment) * SAMPLES_PER_FRAME)
             for job in jobs]
    try:
        clips_audio = read_audio_spans(jobs[0].path, spans)
    except Exception:  # an unreadable audio track: the clips go out without audio
        clips_audio = [None] * len(jobs)
    reader = decord.VideoReader(jobs[0].path, num_threads=1)
    for job, raw_audio in zip(jobs, clips_audio, strict=True):
        try:
            yield _extract_clip(job, reader, times, boxes, landmarks, pose, raw_audio, audio,
                                crop, base_json)
        except Exception as err:
            yield {"key": job.key, "status": "failed", "error": f"{type(err).__name__}: {err}",
                   "members": None}


def _fixed(column, shape: tuple[int, ...]) -> np.ndarray:
    """A (nested) fixed-size list column as a float array of ``shape`` per row, NaN where null.

    ``.values`` keeps the child slots of null rows, so rows stay in step with their index.
    """
    array = column.combine_chunks()
    valid = np.asarray(array.is_valid())
    values = array
    while pa.types.is_fixed_size_list(values.type):
        values = values.values
    numbers = np.asarray(values.to_numpy(zero_copy_only=False), np.float32)
    out = numbers.reshape(len(array), *shape).copy()
    out[~valid] = np.nan
    return out


def _extract_clip(job: ClipJob, reader, times, boxes, landmarks, pose, raw_audio,
                  audio: AudioChain, crop: CropConfig, base_json: dict) -> dict:
    picks = source_indices(times, job.segment)
    box = clip_box(boxes[job.segment.start:job.segment.stop], crop)
    unique = np.unique(picks)
    decoded = reader.get_batch(unique.tolist()).asnumpy()
    by_index = {int(i): crop_frame(frame, box, crop.size) for i, frame in zip(unique, decoded,
                                                                               strict=True)}
    frames = [by_index[int(i)] for i in picks]
    members: dict[str, bytes] = {
        "mp4": _mp4(frames),
        "landmarks.npy": dump_npy(to_crop_pixels(landmarks[picks], box, crop.size)),
        "pose.npy": dump_npy(pose[picks].astype(np.float32)),
    }
    n = len(picks)
    has_audio = raw_audio is not None
    if has_audio:
        # Denoise first: demucs rescales its input and removes energy, so loudness is set last.
        clean = audio.normalize(audio.denoiser(raw_audio))
        members["flac"] = _flac(clean)
        members["speech.npy"] = dump_npy(audio.features(clean, n, OUT_FPS).astype(np.float16))
    record = dict(base_json)
    record.update(
        key=job.key, source_video=job.video_id, source_path=job.path, identity=job.identity,
        split=job.split, segment=job.index, start_s=job.segment.start_s,
        end_s=job.segment.start_s + n / OUT_FPS, frames=n, fps=OUT_FPS, has_audio=has_audio,
        crop_box=[float(v) for v in box], crop_size=crop.size,
    )
    members["json"] = json.dumps(record, sort_keys=True).encode("utf-8")
    return {"key": job.key, "status": "ok", "error": "", "members": members}
