"""Cut one video's kept segments into shard samples (docs/shards.md).

Paper, section 4 and appendix A.1: each clip is 256 x 256 around the head, 25 fps, with 16 kHz
mono audio (loudness-normalised, optionally denoised), speech features two per video frame,
and 68 landmarks (crop pixels) and head pose per frame. Only the segments' frames are decoded;
the audio track is read once for all of a video's segments. Landmarks and pose come from the
stored measures (``metrics/``), resampled to 25 fps by the same frame choice as the pixels, so
every stream is aligned by construction.

Audio is cut on the video's clock (GAIA A.1 drops clips whose "lip movements and speech are not
aligned"): first the streams' start offset from the container (``media.stream_offsets``), then
the lag SyncNet measured between mouth and speech (the metrics' ``syncnet_offset_frames`` over
the clip's frames with SyncNet confidence >= 3, LatentSync's bar), when measure had SyncNet
weights. The weightless lag (``sync_offset_frames``) is noise on a face that is not the speaker
(+0.48 s on one real listener, -0.44 s on another), so it is recorded in the clip's note but
never applied unless asked (``shift_by="weightless"``). A clip lagging more than
``max_sync_offset_s`` is dropped (``out_of_sync``) rather than shifted: a lag that large is more
often a dubbed or wrong track than a late one.
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
from gaia.common.run_errors import is_run_error
from gaia.filters.av_sync import SYNCED_CONFIDENCE, clip_offset_frames
from gaia.filters.segments import Segment
from gaia.pipeline.media.decode import audio_blocks
from gaia.pipeline.media.stream_offsets import stream_start_times
from gaia.pipeline.speech.denoise import Denoiser
from gaia.pipeline.speech.features import SpeechFeatureExtractor
from gaia.schemas.instruction import INSTRUCTION_MEMBER, Instruction
from gaia.schemas.shards import AUDIO_RATE, FPS, dump_npy

SAMPLES_PER_FRAME = AUDIO_RATE // FPS  # 640
MAX_SYNC_OFFSET_S = 0.2  # ExtractConfig.max_sync_offset_s's default
MIN_CONFIDENT_SHARE = 0.5  # share of a clip's frames with a confident lag before it is trusted
SYNC_COLUMNS = ("sync_offset_frames", "sync_confidence", "syncnet_offset_frames",
                "syncnet_confidence")
SYNCNET_CONFIDENCE = 3.0  # LatentSync's bar for a SyncNet offset worth applying
SHIFT_SOURCES = ("syncnet", "weightless", "none")
# Source frames decoded at a time, each cropped at once: memory follows the chunk, not the clip
# (a 20 s clip of 4K at 30 fps is 15 GB of frames decoded whole), as measure decodes.
DECODE_CHUNK = 32


@dataclass(frozen=True)
class ClipJob:
    """One segment of one video to extract, with everything the sample's JSON records;
    ``instruction``: the fields of its ``instruction.json`` when the clip follows an
    instruction (the ``instruct`` preset), else None."""

    key: str
    video_id: str
    path: str
    identity: str
    split: str
    index: int
    segment: Segment
    instruction: dict | None = None


def output_frames(segment: Segment) -> int:
    """Frames of the clip at 25 fps (the segment's length, rounded down to whole frames)."""
    return int(np.floor(segment.duration_s * FPS + 1e-6))


def source_indices(times_s: np.ndarray, segment: Segment) -> np.ndarray:
    """For each 25 fps output frame, the source frame shown at that moment."""
    wanted = segment.start_s + np.arange(output_frames(segment)) / FPS
    seg_times = times_s[segment.start:segment.stop]
    picks = np.searchsorted(seg_times, wanted + 1e-6, side="right") - 1
    return segment.start + np.clip(picks, 0, len(seg_times) - 1)


@dataclass(frozen=True)
class ClipSync:
    """How one clip's audio is put in sync: ``start_s`` of its audio on the audio track's clock.

    av_offset_s: audio stream start minus video stream start. sync_offset_s: measured lag
    (positive: audio late), 0 when unmeasured. note: why it is 0, or empty. out_of_sync: the
    lag is beyond the limit; the clip is dropped.
    """

    av_offset_s: float
    sync_offset_s: float
    note: str
    out_of_sync: bool

    def audio_start_s(self, video_start_s: float) -> float:
        """Where the sound heard with the frame at ``video_start_s`` is on the audio track."""
        return video_start_s + self.sync_offset_s - self.av_offset_s


def av_offset_of(path: str) -> tuple[float, str]:
    """The file's audio-minus-video start (0 and a note when it cannot be read)."""
    try:
        return stream_start_times(path).offset_s, ""
    except Exception as err:  # an odd container: cut as before, but say so
        return 0.0, f"stream start times unreadable ({type(err).__name__}), av offset 0"


def clip_sync(segment: Segment, sync_columns: dict[str, np.ndarray] | None, times_s: np.ndarray,
              av_offset_s: float, max_sync_offset_s: float, av_note: str = "",
              shift_by: str = "syncnet") -> ClipSync:
    """The clip's sync: its audio is shifted by the lag of ``shift_by``'s measure.

    ``syncnet`` (default): the median SyncNet offset over the segment's frames with SyncNet
    confidence >= ``SYNCNET_CONFIDENCE``; ``weightless``: the median weightless lag over its
    frames with confidence >= ``SYNCED_CONFIDENCE``; ``none``: never shifted. Lags are in source
    frames, turned to seconds with the segment's frame interval. A measure that is missing, or
    confident on under half the clip: lag 0 and a note (kept: no evidence it is out of sync).
    """
    if shift_by not in SHIFT_SOURCES:
        raise ValueError(f"shift_by must be one of {SHIFT_SOURCES}, got {shift_by!r}")
    notes = [av_note] if av_note else []
    part = slice(segment.start, segment.stop)
    steps = np.diff(times_s[part])
    step = float(np.median(steps)) if steps.size else 1.0 / FPS
    if not np.isfinite(step) or step <= 0:
        step = 1.0 / FPS
    have = sync_columns or {}
    if "sync_offset_frames" in have:  # the weightless lag is recorded, whatever shifts
        lag = clip_offset_frames(have["sync_offset_frames"][part],
                                 have["sync_confidence"][part], SYNCED_CONFIDENCE)
        if np.isfinite(lag) and shift_by != "weightless":
            notes.append(f"weightless lag {lag * step:+.3f} s (recorded, not applied)")
    if shift_by == "none":
        return ClipSync(av_offset_s, 0.0, "; ".join(notes), False)
    prefix, bar = (("syncnet_", SYNCNET_CONFIDENCE) if shift_by == "syncnet"
                   else ("sync_", SYNCED_CONFIDENCE))
    offsets, confidence = have.get(prefix + "offset_frames"), have.get(prefix + "confidence")
    if offsets is None or not np.isfinite(confidence[part]).any():
        notes.append("no SyncNet measure (measure ran without --syncnet-weights), sync offset 0"
                     if shift_by == "syncnet" else "no sync columns in metrics, sync offset 0")
        return ClipSync(av_offset_s, 0.0, "; ".join(notes), False)
    confident = np.nan_to_num(confidence[part], nan=-np.inf) >= bar
    share = float(confident.mean()) if confident.size else 0.0
    if share < MIN_CONFIDENT_SHARE:
        # A still or silent face has chance peaks above the line on some frames; their lags
        # are noise, and a clip is only shifted (or dropped) on the evidence of most of it.
        notes.append(f"no confident sync measure on most of the clip (confident on "
                     f"{share:.0%} of its frames), sync offset 0")
        return ClipSync(av_offset_s, 0.0, "; ".join(notes), False)
    offset = clip_offset_frames(offsets[part], confidence[part], bar) * step
    return ClipSync(av_offset_s, float(offset), "; ".join(notes),
                    abs(offset) > max_sync_offset_s + 1e-9)


def _sync_columns(table: pa.Table) -> dict[str, np.ndarray] | None:
    present = [name for name in SYNC_COLUMNS if name in table.column_names]
    if not present:
        return None
    return {name: np.asarray(table.column(name).to_numpy(zero_copy_only=False), np.float64)
            for name in present}


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
    from gaia.pipeline.media.video_writer import ONE_THREAD, write_video

    with tempfile.TemporaryDirectory(prefix="gaia-clip-") as folder:
        # One x264 thread: a clip's bytes are the same on any machine (the cluster sizing
        # counts one core per video anyway).
        path = write_video(Path(folder) / "clip.mp4", frames, FPS, options=ONE_THREAD)
        return path.read_bytes()


@dataclass
class AudioChain:
    """What turns a clip's raw audio into its sample streams (see ``pipeline.extract.job``)."""

    normalize: Callable[[np.ndarray], np.ndarray]  # loudness, after denoising
    denoiser: Denoiser
    features: SpeechFeatureExtractor


def extract_video(jobs: list[ClipJob], metrics_file: Path | str, audio: AudioChain,
                  crop: CropConfig, base_json: dict, max_sync_offset_s: float = MAX_SYNC_OFFSET_S,
                  av_offset_s: float | None = None, shift_by: str = "syncnet") -> Iterator[dict]:
    """Yield one row per clip: ``{"key", "status", "error", "members"}`` (members: name->bytes).

    A clip that fails (decode error, no face box) yields status ``failed`` with the reason; one
    whose measured lip-sync lag is beyond ``max_sync_offset_s`` yields status ``dropped`` with
    error ``out_of_sync: ...``; the others still come out. ``av_offset_s``: the video's
    audio-minus-video stream start (``videos.parquet``), read from the file when None.
    ``shift_by``: whose lag moves the audio (``clip_sync``).
    """
    import decord

    columns = ["time_s", "face_box", "landmarks", "pitch_deg", "yaw_deg", "roll_deg"]
    names = set(pq.read_schema(metrics_file).names)  # one read of the file for all columns
    columns += [name for name in SYNC_COLUMNS if name in names]
    table = pq.read_table(metrics_file, columns=columns)
    times = table.column("time_s").to_numpy()
    boxes = _fixed(table.column("face_box"), (4,))
    landmarks = _fixed(table.column("landmarks"), (68, 2))
    pose = np.stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float32)
                     for c in ("pitch_deg", "yaw_deg", "roll_deg")], axis=1)
    av_note = ""
    if av_offset_s is None or not np.isfinite(av_offset_s):
        av_offset_s, av_note = av_offset_of(jobs[0].path)
    sync_columns = _sync_columns(table)
    syncs = [clip_sync(job.segment, sync_columns, times, av_offset_s, max_sync_offset_s, av_note,
                       shift_by) for job in jobs]
    spans = [(sync.audio_start_s(job.segment.start_s),
              output_frames(job.segment) * SAMPLES_PER_FRAME) for job, sync in zip(jobs, syncs,
                                                                                   strict=True)]
    try:
        clips_audio = read_audio_spans(jobs[0].path, spans)
    except Exception:  # an unreadable audio track: the clips go out without audio
        clips_audio = [None] * len(jobs)
    reader = decord.VideoReader(jobs[0].path, num_threads=1)
    for job, sync, raw_audio in zip(jobs, syncs, clips_audio, strict=True):
        if sync.out_of_sync and raw_audio is not None:
            yield {"key": job.key, "status": "dropped", "members": None,
                   "error": f"out_of_sync: audio {sync.sync_offset_s:+.3f} s off the lips "
                            f"(limit {max_sync_offset_s:g} s)"}
            continue
        try:
            yield _extract_clip(job, reader, times, boxes, landmarks, pose, raw_audio, audio,
                                crop, base_json, sync)
        except Exception as err:
            if is_run_error(err):  # a full disk is the run's failure, not this clip's
                raise
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
                  audio: AudioChain, crop: CropConfig, base_json: dict,
                  sync: ClipSync | None = None) -> dict:
    picks = source_indices(times, job.segment)
    box = clip_box(boxes[job.segment.start:job.segment.stop], crop)
    unique = np.unique(picks)
    by_index: dict[int, np.ndarray] = {}
    for first in range(0, len(unique), DECODE_CHUNK):
        chunk = unique[first:first + DECODE_CHUNK]
        decoded = reader.get_batch(chunk.tolist()).asnumpy()
        by_index.update((int(i), crop_frame(frame, box, crop.size))
                        for i, frame in zip(chunk, decoded, strict=True))
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
        members["speech.npy"] = dump_npy(audio.features(clean, n, FPS).astype(np.float16))
    record = dict(base_json)
    record.update(
        key=job.key, source_video=job.video_id, source_path=job.path, identity=job.identity,
        split=job.split, segment=job.index, start_s=job.segment.start_s,
        end_s=job.segment.start_s + n / FPS, frames=n, fps=float(FPS), has_audio=has_audio,
        crop_box=[float(v) for v in box], crop_size=crop.size,
    )
    if sync is not None and has_audio:
        record.update(av_offset_s=float(sync.av_offset_s), sync_offset_s=float(sync.sync_offset_s))
        if sync.note:
            record["sync_note"] = sync.note
    members["json"] = json.dumps(record, sort_keys=True).encode("utf-8")
    if job.instruction is not None:  # the instruct preset (appendix E)
        members[INSTRUCTION_MEMBER] = Instruction(**job.instruction).to_bytes()
    return {"key": job.key, "status": "ok", "error": "", "members": members}
