"""Every filter, the segment rules and the funnel in one compiled pass over the compact tune
table (issue 14): the same decisions as ``gaia.filters.funnel.decide_video``, frame for frame,
in code space (``gaia.schemas.tune_table``), without building a verdict array per filter.

The loop is numba's (``njit``, cached on disk): per video, each frame's first failing reason
in the filters' order (face_count, shot_cut, identity, face_size, frontal, jitter, occlusion,
sharpness, silence) and every reason it fails; then the runs of kept frames become clips by
the segment rules, and the seconds and frames are summed by reason. Frame and clip counts are
equal to the reference path's; seconds equal to float rounding (the reference sums durations
pairwise, this loop in order: a relative difference near 1e-15).
"""

from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np

from gaia.filters.base import REASONS, code
from gaia.filters.funnel import Funnel, SourceTotals
from gaia.filters.thresholds import CurationThresholds
from gaia.schemas.tune_table import CODED, CODED_BY_NAME, NAN_CODE, THRESHOLD_COLUMNS

R = len(REASONS)
NO_FACE, MULTIPLE_FACES, NOT_FRONTAL, JITTER, OCCLUDED, NO_AUDIO, SILENCE, SHORT_RUN, \
    NOT_SPEAKING, SHOT_CUT, BLURRY, SMALL_FACE, IDENTITY = (code(name) for name in (
        "no_face", "multiple_faces", "not_frontal", "jitter", "occluded", "no_audio",
        "silence", "short_run", "not_speaking", "shot_cut", "blurry", "small_face",
        "identity_change"))
COLUMN = {c.name: i for i, c in enumerate(CODED)}
# Row of each coded column in the (columns, frames) code matrix: constants for the loop.
C_CUT, C_IDENTITY, C_FACE_PX, C_YAW = (COLUMN[n] for n in (
    "cut_score", "identity_distance", "face_px", "yaw_abs"))
C_LANDMARKS, C_BOX, C_OCCLUSION, C_SHARPNESS = (COLUMN[n] for n in (
    "jitter_landmarks", "jitter_box", "occlusion", "sharpness"))
C_SPEECH, C_SYNC = COLUMN["speech_prob"], COLUMN["sync_confidence"]
# Integer parameters: the filters' enabled flags and grid codes, in this order.
INT_PARAMS = ("face_count", "max_faces", "shot_cut", "cut", "identity", "identity_k",
              "face_size", "face_px", "frontal", "frontal_column", "frontal_k", "yaw_k",
              "jitter", "landmarks_k", "box_k", "occlusion", "occlusion_k", "sharpness",
              "sharpness_k", "silence", "speech_k", "visible_speaker", "sync_k")
P = {name: i for i, name in enumerate(INT_PARAMS)}


class OffGrid(ValueError):
    """A threshold the codes cannot answer; ``name`` is its ``FILTER.KEY``."""

    def __init__(self, name: str, value: float, step: float) -> None:
        super().__init__(f"{name}={value} is not on the tune table's grid (steps of {step}); "
                         "reading metrics/ instead")
        self.name = name


def _grid(thresholds: CurationThresholds, section: str, key: str, column: str) -> int:
    value = getattr(getattr(thresholds, section), key)
    k = CODED_BY_NAME[column].grid_index(value)
    if k is None:
        raise OffGrid(f"{section}.{key}", value, CODED_BY_NAME[column].step)
    return k


def parameters(thresholds: CurationThresholds) -> tuple[np.ndarray, np.ndarray]:
    """The thresholds as the loop's integer and float parameters; ``OffGrid`` for a threshold
    the codes cannot answer."""
    t = thresholds
    ints = np.zeros(len(INT_PARAMS), np.int64)
    dev_column = "frontal_dev" if t.frontal.reading == "eye_line" else "frontal_image_dev"
    values = {
        "face_count": t.face_count.enabled, "max_faces": t.face_count.max_faces,
        "shot_cut": t.shot_cut.enabled, "identity": t.identity.enabled,
        "face_size": t.face_size.enabled, "frontal": t.frontal.enabled,
        "frontal_column": COLUMN[dev_column], "jitter": t.jitter.enabled,
        "occlusion": t.occlusion.enabled, "sharpness": t.sharpness.enabled,
        "silence": t.silence.enabled, "visible_speaker": t.silence.visible_speaker,
    }
    keyed = {"cut": ("shot_cut", "max_cut_score"), "identity_k": ("identity", "max_distance"),
             "face_px": ("face_size", "min_face_px"),
             "frontal_k": ("frontal", "max_deviation_deg"), "yaw_k": ("frontal", "max_yaw_deg"),
             "landmarks_k": ("jitter", "max_landmarks"), "box_k": ("jitter", "max_box"),
             "occlusion_k": ("occlusion", "max_occlusion"),
             "sharpness_k": ("sharpness", "min_sharpness"),
             "speech_k": ("silence", "min_speech_prob"),
             "sync_k": ("silence", "min_sync_confidence")}
    for name, (section, key) in keyed.items():
        column = THRESHOLD_COLUMNS[(section, key)]
        column = dev_column if name == "frontal_k" else column[0]
        values[name] = _grid(t, section, key, column)
    for name, value in values.items():
        ints[P[name]] = int(value)
    floats = np.array([t.silence.hold_s, t.silence.min_mouth_motion, t.silence.window_s,
                       t.segments.min_s, t.segments.max_s, t.silence.min_speech_prob],
                      np.float64)
    return ints, floats


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _fail(out, reason: int, duration: float) -> None:
    out[2, reason] += duration
    out[3, reason] += 1


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _failed(out, first: int, reason: int, duration: float) -> int:
    """Count a failing filter's reason for the frame; the frame's first reason so far."""
    _fail(out, reason, duration)
    return first or reason


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _video(first: int, n: int, fps: float, t0: float, uniform: bool, times_all, faces,
           codes, motion, ints, floats, out, totals, scratch_f, scratch_i, scratch_b):
    """One video's frames ``first:first + n``: adds to ``out`` (4, R) (first seconds, first
    frames, any seconds, any frames) and writes ``totals`` (input_s, kept_s, kept frames,
    clips). Each reason's seconds are summed in frame order, as the reference's bincounts.
    ``scratch_*``: work buffers of the file's longest video, reused (no allocation per video:
    fresh pages cost more than the work)."""
    nan = NAN_CODE
    times, durations, sums = scratch_f[0], scratch_f[1], scratch_f[2]
    counts = scratch_i
    speaking, held_buffer, dropped = scratch_b[0], scratch_b[1], scratch_b[2]
    for i in range(n):
        times[i] = t0 + i / fps if uniform else times_all[first + i]
    for i in range(n - 1):
        durations[i] = times[i + 1] - times[i]
    if n:
        durations[n - 1] = (times[n - 1] + 1.0 / fps) - times[n - 1]
    step = (times[n - 1] - times[0]) / (n - 1) if n > 1 else 0.04
    speech, sync = codes[C_SPEECH], codes[C_SYNC]
    speech_k = ints[20]
    # Speech (NaN reads as 0), and running sums of mouth motion in float32, as the reference's
    # cumsum of a float32 column runs.
    sums[0], counts[0] = 0.0, 0
    running = np.float32(0.0)
    any_speaking = False
    for i in range(n):
        g = first + i
        c = speech[g]
        speaking[i] = (speech_k == 0) if c == nan else c >= speech_k
        any_speaking |= speaking[i]
        m = motion[g]
        valid = math.isfinite(m)
        if valid:
            running = np.float32(running + m)
        sums[i + 1] = running
        counts[i + 1] = counts[i] + valid
    held = speaking
    hold_s = floats[0]
    if n >= 2 and any_speaking and hold_s != 0.0:
        reach = int(math.floor(hold_s / step + 1e-6)) if step > 0 else 0
        if reach > 0:
            held = held_buffer
            last = -(1 << 40)
            for i in range(n):
                if speaking[i]:
                    last = i
                held[i] = i - last <= reach
            nxt = 1 << 40
            for i in range(n - 1, -1, -1):
                if speaking[i]:
                    nxt = i
                held[i] = held[i] or nxt - i <= reach
    half = max(1, int(round(floats[2] / max(step, 1e-6) / 2)))
    on = ints
    dev = codes[ints[9]]
    input_s = 0.0
    for i in range(n):
        g = first + i
        d = durations[i]
        input_s += d
        reason = 0
        if on[0]:  # face_count: no_face overrides multiple_faces, as the reference writes
            f = faces[g]
            r = NO_FACE if f < 1 else (MULTIPLE_FACES if f > on[1] else 0)
            if r:
                reason = _failed(out, reason, r, d)
        c = codes[C_CUT][g]
        if on[2] and c != nan and c >= on[3]:
            reason = _failed(out, reason, SHOT_CUT, d)
        c = codes[C_IDENTITY][g]
        if on[4] and c != nan and c > on[5]:
            reason = _failed(out, reason, IDENTITY, d)
        c = codes[C_FACE_PX][g]
        if on[6] and c != nan and c < on[7]:
            reason = _failed(out, reason, SMALL_FACE, d)
        if on[8]:
            c, y = dev[g], codes[C_YAW][g]
            if (c != nan and c > on[10]) or (y != nan and y > on[11]):
                reason = _failed(out, reason, NOT_FRONTAL, d)
        if on[12]:
            a, b = codes[C_LANDMARKS][g], codes[C_BOX][g]
            if (a != nan and a > on[13]) or (b != nan and b > on[14]):
                reason = _failed(out, reason, JITTER, d)
        c = codes[C_OCCLUSION][g]
        if on[15] and c != nan and c > on[16]:
            reason = _failed(out, reason, OCCLUDED, d)
        c = codes[C_SHARPNESS][g]
        if on[17] and c != nan and c < on[18]:
            reason = _failed(out, reason, BLURRY, d)
        if on[19]:
            r = 0
            if speech[g] == nan:
                r = NO_AUDIO
            elif not held[i]:
                r = SILENCE
            elif on[21] and math.isfinite(motion[g]):
                q = sync[g]
                if not (q != nan and q >= on[22]):
                    lo = max(0, i - half)
                    hi = min(n, i + half + 1)
                    count = counts[hi] - counts[lo]
                    if not (count > 0 and (sums[hi] - sums[lo]) / count >= floats[1]):
                        r = NOT_SPEAKING
            if r:
                reason = _failed(out, reason, r, d)
        dropped[i] = reason != 0
        if reason:
            out[0, reason] += d
            out[1, reason] += 1
    # Runs of kept frames become clips (filters.segments); the frames of too short a run are
    # short_run.
    kept_s = 0.0
    kept_frames = 0
    clips = 0
    i = 0
    while i < n:
        if dropped[i]:
            i += 1
            continue
        j = i
        while j < n and not dropped[j]:
            j += 1
        length = (times[j - 1] + durations[j - 1]) - times[i]
        if length + 1e-6 >= floats[3]:
            clips += max(1, int(math.ceil(length / floats[4] - 1e-9)))
            for k in range(i, j):
                kept_s += durations[k]
            kept_frames += j - i
        else:
            for k in range(i, j):
                out[0, SHORT_RUN] += durations[k]
                out[1, SHORT_RUN] += 1
                _fail(out, SHORT_RUN, durations[k])
        i = j
    totals[0] = input_s
    totals[1] = kept_s
    totals[2] = kept_frames
    totals[3] = clips


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _file(starts, counts, fps, t0, uniform, times, faces, codes, motion, ints, floats,
          out, totals):
    longest = counts.max() + 1 if len(counts) else 1
    scratch_f = np.empty((3, longest), np.float64)
    scratch_i = np.empty(longest, np.int64)
    scratch_b = np.empty((3, longest), np.bool_)
    for v in range(len(starts)):
        _video(starts[v], counts[v], fps[v], t0[v], uniform[v], times, faces, codes, motion,
               ints, floats, out, totals[v], scratch_f, scratch_i, scratch_b)


def decide_file(table, ints: np.ndarray, floats: np.ndarray,
                clips_by_video: dict[str, int] | None = None) -> Funnel:
    """The funnel of one part file (``compact.TableFile``) under the parameters; each video's
    clip count goes to ``clips_by_video`` when given."""
    videos = table.videos
    starts = np.array([v["row"] for v in videos], np.int64)
    counts = np.array([v["frames"] for v in videos], np.int64)
    fps = np.array([v["fps"] for v in videos], np.float64)
    t0 = np.array([v["t0"] for v in videos], np.float64)
    uniform = np.array([v["uniform"] for v in videos], np.bool_)
    codes = table.codes
    out = np.zeros((4, R), np.float64)
    totals = np.zeros((len(videos), 4), np.float64)
    _file(starts, counts, fps, t0, uniform, table.times, table.columns["num_faces"], codes,
          table.columns["mouth_motion"], ints, floats, out, totals)
    funnel = Funnel(videos=len(videos), input_frames=int(counts.sum()),
                    input_s=float(totals[:, 0].sum()), kept_frames=int(totals[:, 2].sum()),
                    kept_s=float(totals[:, 1].sum()), clips=int(totals[:, 3].sum()),
                    first_s=out[0], first_frames=out[1], any_s=out[2], any_frames=out[3])
    for video, row in zip(videos, totals, strict=True):
        if clips_by_video is not None:
            clips_by_video[video["video_id"]] = int(row[3])
        funnel.by_source[video["source"]] = funnel.by_source.get(
            video["source"], SourceTotals()) + SourceTotals(row[0], row[1], int(row[3]), 1)
    return funnel


def decide_table(run_dir: Path, params: list[tuple[np.ndarray, np.ndarray]], workers: int = 1,
                 clips_by_video: dict[str, int] | None = None) -> list[Funnel]:
    """The funnel under each of ``params`` (``parameters``) from one pass over the run's
    compact table: ``workers`` threads take its files in turn (the loop releases the GIL).
    The first parameter set's clip count per video goes to ``clips_by_video`` when given.
    Raises ``compact.TuneTableError`` when the table is missing, stale or unreadable."""
    from concurrent.futures import ThreadPoolExecutor

    from gaia.pipeline.tune.compact import _by_file, load_table_file, read_index

    files = list(_by_file(read_index(run_dir)).items())

    def one(item: tuple[str, list[dict]]) -> list[Funnel]:
        table = load_table_file(run_dir, *item)
        return [decide_file(table, ints, floats, clips_by_video if n == 0 else None)
                for n, (ints, floats) in enumerate(params)]

    totals = [Funnel() for _ in params]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for funnels in pool.map(one, files):
            totals = [total + funnel for total, funnel in zip(totals, funnels, strict=True)]
    return totals
