"""Measure one video: every frame's face, landmarks, pose and filter measures, streamed to Parquet.

Paper, appendix A.1 (data filtering). This is the work of one row of the ``measure`` job; it
runs inside an isolated worker process (``pipeline.measure.worker_process``) so a decoder that hangs or crashes
costs one video, not the job. Frames are decoded and measured ``chunk_frames`` at a time and
written as they go, so memory does not grow with the video's length.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gaia.common.run_errors import is_run_error
from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.frame_measures import ChunkMeasurer
from gaia.pipeline.measure.models import Models, tracked_video
from gaia.pipeline.measure.sync_columns import (
    EnergyTap,
    rewrite_with,
    sync_measures,
    video_sync_offset_s,
)
from gaia.pipeline.media.decode import (
    DecodeError,
    VideoInfo,
    audio_blocks,
    is_variable_rate,
    probe,
)
from gaia.pipeline.media.stream_offsets import stream_start_times
from gaia.schemas.atomic import atomic_path, partial_path
from gaia.schemas.metrics import METRICS_COMPRESSION, METRICS_SCHEMA
from gaia.schemas.videos import OK_FLAGS, empty_record

__all__ = ["Models", "measure_video"]

Progress = Callable[[int, int], None]


def measure_video(path: str, video_id: str, source: str, metrics_dir: Path, models: Models,
                  config: MeasureConfig, progress: Progress | None = None,
                  on_probe: Callable[[VideoInfo], None] | None = None) -> dict:
    """Measure the local file ``path``; write ``metrics_dir/{video_id}.parquet``; return its row.

    Never raises for a bad input: the returned ``videos.parquet`` row says what happened.
    Raises what stops the whole run (a full disk: ``gaia.common.run_errors``).
    ``on_probe`` hears the container's properties before decoding starts (the supervisor sets
    the time limit from the duration); ``progress`` hears frames done after every chunk.
    """
    started, cpu_started = time.monotonic(), time.process_time()
    record = empty_record(video_id, path, source)
    try:
        _measure_into(record, path, metrics_dir, models, config, progress, on_probe)
    except DecodeError as err:
        record.update(status="failed", reason=err.reason, error=str(err))
    except Exception as err:  # a model or library bug must not stop the job: it is data too
        if is_run_error(err):  # a full disk is the run's failure, not this video's
            raise
        record.update(status="failed", reason="error", error=f"{type(err).__name__}: {err}")
    record["elapsed_s"] = time.monotonic() - started
    record["cpu_s"] = time.process_time() - cpu_started
    return record


def _measure_into(record: dict, path: str, metrics_dir: Path, models: Models,
                  config: MeasureConfig, progress: Progress | None,
                  on_probe: Callable[[VideoInfo], None] | None) -> None:
    if not os.path.exists(path):
        raise DecodeError("not_found", f"{path} does not exist or is not readable")
    record["size_bytes"] = size = os.stat(path).st_size
    if size == 0 and os.path.isfile(path):
        raise DecodeError("empty_file", f"{path} has zero bytes: re-download or remove it")
    info = probe(path)
    if on_probe:
        on_probe(info)
    record.update(width=info.width, height=info.height, fps=info.fps)
    flags: list[str] = []

    try:
        av_offset_s = stream_start_times(path).offset_s if info.has_audio else 0.0
    except Exception:  # the start times are a refinement: unreadable ones mean 0
        av_offset_s = 0.0
    record["av_offset_s"] = av_offset_s
    if abs(av_offset_s) > 0.5 / max(info.fps, 1.0):
        flags.append("av_offset")

    speech = np.zeros(0, np.float32)
    energy: EnergyTap | None = None
    if info.has_audio:
        try:
            energy = EnergyTap(audio_blocks(path))
            speech = models.speech.window_probs(energy)
        except Exception as err:  # a broken audio track: measure the video, note the audio
            flags.append("no_audio")
            energy = None
            record["error"] = f"audio track unreadable ({err}); speech measures are null"
    record["has_audio"] = bool(info.has_audio and len(speech) > 0)
    if not record["has_audio"] and "no_audio" not in flags:
        flags.append("no_audio")

    scale, frames, tracker = tracked_video(path, info, config, models.scanner,
                                           models.landmarker)
    record.update(face_px=scale.face_px, analysis_side=scale.analysis_side)
    if frames.num_frames == 0:
        raise DecodeError("decode_error", f"{path}: the video stream holds no decodable frame")
    measurer = ChunkMeasurer(record["video_id"], frames, speech, av_offset_s, models, tracker)
    measured, last_time = 0, 0.0
    times_parts: list[np.ndarray] = []
    final = metrics_dir / f"{record['video_id']}.parquet"
    # Frames are written as measured to a hidden partial file (resume removes a killed one);
    # the sync pass copies it into the final file's partial, renamed whole at the end.
    chunked = partial_path(metrics_dir / f"{record['video_id']}.frames.parquet")
    with atomic_path(final) as tmp, _removed_after(chunked):
        with pq.ParquetWriter(chunked, METRICS_SCHEMA, compression=METRICS_COMPRESSION) as writer:
            try:
                for chunk in frames:
                    writer.write_batch(measurer.batch(chunk))
                    times_parts.append(chunk.times_s)
                    measured += len(chunk.frames)
                    last_time = float(chunk.times_s[-1])
                    if progress:
                        progress(measured, frames.num_frames)
            except DecodeError as err:
                if measured == 0:
                    raise
                flags.append("truncated")
                record["error"] = f"decoding stopped after {measured} frames: {err}"
        if measured < 0.98 * info.num_frames - 1 and "truncated" not in flags:
            flags.append("truncated")
        mouth = np.concatenate(measurer.mouth_open) if measurer.mouth_open else np.zeros(0)
        covered = (np.concatenate(measurer.mouth_covered) if measurer.mouth_covered
                   else np.zeros(0, bool))
        late = sync_measures(mouth, np.concatenate(times_parts) if times_parts else np.zeros(0),
                             frames.fps, energy.rms() if energy and record["has_audio"] else None,
                             av_offset_s, covered)
        if measurer.syncnet is not None and record["has_audio"] and measured:
            late.update(_syncnet_columns(path, measurer, measured, av_offset_s))
        rewrite_with(chunked, tmp, late)
    sync_offset_s = video_sync_offset_s(late, frames.fps)
    # Null, not NaN, when no window was confident: NaN != NaN would make equal rows differ.
    record["sync_offset_s"] = sync_offset_s if np.isfinite(sync_offset_s) else None
    record["persons"] = len(measurer.identities.centroids)
    if measurer.models.embedder is not None:  # the run-wide identities start from these
        record["person_embeddings"] = [[float(x) for x in np.asarray(c, np.float32)]
                                       for c in measurer.identities.centroids]
        record["person_tracks"] = [int(c) for c in measurer.identities.counts]
        record["person_first_frames"] = [int(f) for f in measurer.identities.first_frames]
    if measurer.frame_errors:
        flags.append("frame_errors")
        record["error"] = (record.get("error") or "") + (
            f"{measurer.frame_errors} frames refused by a face model (last: "
            f"{measurer.last_error}); they count as faceless")

    times = frames.times()[:measured]
    duration = last_time + 1.0 / frames.fps
    if is_variable_rate(times):
        flags.append("vfr")
    if duration < config.min_duration_s:
        flags.append("too_short")
    if measurer.frames_with_face == 0:
        flags.append("no_face")
    elif measurer.frames_multi_face > measurer.frames_with_face / 2:
        flags.append("multiple_faces")
    if frames.scale > 1.0:
        flags.append("downscaled")
    flags.sort(key=list(OK_FLAGS).index)
    record.update(
        status="ok",
        reason=flags[0] if flags else "ok",
        flags=flags,
        duration_s=duration,
        fps=frames.fps,
        num_frames=measured,
        frames_with_face=measurer.frames_with_face,
    )


def _syncnet_columns(path: str, measurer: ChunkMeasurer, measured: int, av_offset_s: float
                     ) -> dict[str, np.ndarray]:
    """SyncNet's columns: the audio read once more (16 kHz, on the video's clock).

    A second decode rather than keeping the samples from the first pass: the first pass keeps
    only 10 ms energies so memory stays flat for long videos, and decoding audio costs little
    beside SyncNet's forward passes."""
    from gaia.pipeline.media.stream_offsets import audio_on_video_clock
    from gaia.schemas.shards import AUDIO_RATE

    audio = np.concatenate([np.asarray(b, np.float32).reshape(-1) for b in audio_blocks(path)])
    audio = audio_on_video_clock(audio, AUDIO_RATE, av_offset_s)
    return measurer.syncnet.finish(audio, measured, np.concatenate(measurer.has_face))


@contextlib.contextmanager
def _removed_after(path: Path) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
