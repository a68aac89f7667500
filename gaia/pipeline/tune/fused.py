"""Every filter, the segment rules and the funnel in one compiled pass over the compact tune
table (issue 14): the same decisions as ``gaia.filters.funnel.decide_video``, frame for frame,
in code space (``gaia.schemas.tune_table``), without building a verdict array per filter.

What the pass decides comes from the registered filters' specs (``gaia.filters.registry``), as
parameter arrays, not as code: per filter its kind, switch and reason; per threshold key of a
``compare`` filter the table column it reads and the interval of codes that fails it. A
threshold ``t`` on a column's grid (``t = g_k``) fails a frame whose code ``c`` is not missing
and lies in:

- ``c > k`` for ``v > t`` (ceil codes), ``c >= k`` for ``v >= t`` (floor codes),
- ``c < k`` for ``v < t`` (floor codes),

so each check is one interval test, run down the column of codes of one threshold. The
face-count and silence rules are more than comparisons: they have kernels of their own here,
a second implementation of ``gaia.filters.face_count`` and ``gaia.filters.silence`` that the
parity tests hold to the reference.

The loop is numba's (``njit``, cached on disk): per video, each frame's first failing reason
in the filters' order and every reason it fails; then the runs of kept frames become clips by
the segment rules, and the seconds and frames are summed by reason. Frame and clip counts are
equal to the reference path's; seconds equal to float rounding (the reference sums durations
pairwise, this loop in order: a relative difference near 1e-15).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np

from gaia.filters.base import code, reasons
from gaia.filters.funnel import Funnel, SourceTotals
from gaia.filters.registry import coded_columns, coded_name, filters
from gaia.filters.spec import FilterSpec, ThresholdKey
from gaia.filters.thresholds import CurationThresholds
from gaia.pipeline.compact_table import by_file, load_table_file, read_index
from gaia.schemas.tune_table import NAN_CODE, CodedColumn

# Filter kinds (spec.fused), as the loop reads them; the registry admits at most one filter of
# each special kind, and at most ``spec.MAX_FILTERS`` filters (one bit each in a frame's mask).
COMPARE, FACE_COUNT, SILENCE = 0, 1, 2
# The position of a 32-bit word's lowest set bit in one multiply and one look-up: isolated, the
# bit times this de Bruijn constant puts a distinct pattern in the top five bits.
DE_BRUIJN = 0x077CB531
BIT_INDEX = np.zeros(32, np.int64)
for _bit in range(32):
    BIT_INDEX[((DE_BRUIJN << _bit) & 0xFFFFFFFF) >> 27] = _bit
KINDS = {"compare": COMPARE, "face_count": FACE_COUNT, "silence": SILENCE}
# The special kernels' integer parameters (``Parameters.special``), by position.
(S_MAX_FACES, S_NO_FACE, S_MULTIPLE_FACES, S_SPEECH_COLUMN, S_SPEECH_K, S_SYNC_COLUMN,
 S_SYNC_K, S_VISIBLE_SPEAKER, S_NO_AUDIO, S_SILENCE, S_NOT_SPEAKING, S_SHORT_RUN,
 S_FACE_COUNT_AT, S_SILENCE_AT) = range(14)
# Float parameters, by position.
F_HOLD_S, F_MIN_MOUTH_MOTION, F_WINDOW_S, F_MIN_S, F_MAX_S = range(5)


class OffGrid(ValueError):
    """A threshold the codes cannot answer; ``name`` is its ``FILTER.KEY``."""

    def __init__(self, name: str, value: float, step: float) -> None:
        super().__init__(f"{name}={value} is not on the tune table's grid (steps of {step}); "
                         "reading metrics/ instead")
        self.name = name


@dataclass(frozen=True)
class Parameters:
    """One set of thresholds as the loop's arrays (module docstring).

    ``kinds``, ``on``, ``reason``: per filter; ``first_check``: where each filter's checks
    start in ``check_column``, ``check_low``, ``check_high`` (one more entry than filters);
    ``special``, ``floats``: the face-count, silence and segment parameters by position."""

    kinds: np.ndarray
    on: np.ndarray
    reason: np.ndarray
    first_check: np.ndarray
    check_column: np.ndarray
    check_low: np.ndarray
    check_high: np.ndarray
    special: np.ndarray
    floats: np.ndarray
    reasons: int

    def arrays(self) -> tuple:
        return (self.kinds, self.on, self.reason, self.first_check, self.check_column,
                self.check_low, self.check_high, self.special, self.floats)


def _grid_k(column: CodedColumn, spec: FilterSpec, k: ThresholdKey, value: float) -> int:
    index = column.grid_index(value)
    if index is None:
        raise OffGrid(f"{spec.name}.{k.name}", value, column.step)
    return index


def _failing_codes(compare: str, k: int) -> tuple[int, int]:
    """The interval of codes that fails a threshold on grid point ``k`` (module docstring)."""
    if compare == ">":
        return k + 1, NAN_CODE - 1
    if compare == ">=":
        return k, NAN_CODE - 1
    return 0, k - 1  # "<"


class FollowsInstructions(OffGrid):
    """Thresholds whose clips follow timed-text cues (the ``instruct`` preset, appendix E):
    the table holds no cues, so the reference path answers (``decide_video``, exactly what
    extract cuts)."""

    def __init__(self) -> None:
        ValueError.__init__(self, "instructions.enabled: clips follow the videos' timed-text "
                            "cues, which the tune table does not hold; reading metrics/ instead")
        self.name = "instructions"


def parameters(thresholds: CurationThresholds) -> Parameters:
    """The thresholds as the loop's parameters, from the registered filters' specs;
    ``OffGrid`` for a threshold the codes cannot answer (``FollowsInstructions`` for
    thresholds that follow instructions)."""
    if thresholds.instructions.enabled:
        raise FollowsInstructions()
    coded = coded_columns()
    index = {c.name: i for i, c in enumerate(coded)}
    kinds, on, reason, first_check = [], [], [], [0]
    checks: list[tuple[int, int, int]] = []
    special = np.zeros(14, np.int64)
    special[S_FACE_COUNT_AT] = special[S_SILENCE_AT] = -1
    floats = np.zeros(5, np.float64)

    def grid_key(spec: FilterSpec, k: ThresholdKey, section) -> tuple[int, int]:
        name = coded_name(k, k.column_for(section))
        return index[name], _grid_k(coded[index[name]], spec, k, getattr(section, k.name))

    for at, spec in enumerate(filters()):
        section = thresholds.section(spec.name)
        kinds.append(KINDS[spec.fused])
        on.append(bool(section.enabled))
        reason.append(code(spec.reasons[0]))
        if spec.fused == "compare":
            for k in spec.keys:
                column, grid_at = grid_key(spec, k, section)
                checks.append((column, *_failing_codes(k.compare, grid_at)))
        elif spec.fused == "face_count":
            special[S_FACE_COUNT_AT] = at if section.enabled else -1
            special[S_MAX_FACES] = section.max_faces
            special[S_NO_FACE], special[S_MULTIPLE_FACES] = code("no_face"), code(
                "multiple_faces")
        else:  # silence
            keys = {k.name: k for k in spec.keys}
            special[S_SPEECH_COLUMN], special[S_SPEECH_K] = grid_key(
                spec, keys["min_speech_prob"], section)
            special[S_SYNC_COLUMN], special[S_SYNC_K] = grid_key(
                spec, keys["min_sync_agreement"], section)
            special[S_VISIBLE_SPEAKER] = section.visible_speaker
            special[S_SILENCE_AT] = at if section.enabled else -1
            special[S_NO_AUDIO], special[S_SILENCE], special[S_NOT_SPEAKING] = (
                code(r) for r in ("no_audio", "silence", "not_speaking"))
            floats[F_HOLD_S], floats[F_MIN_MOUTH_MOTION], floats[F_WINDOW_S] = (
                section.hold_s, section.min_mouth_motion, section.window_s)
        first_check.append(len(checks))
    special[S_SHORT_RUN] = code("short_run")
    floats[F_MIN_S], floats[F_MAX_S] = thresholds.segments.min_s, thresholds.segments.max_s
    check = np.array(checks, np.int64).reshape(-1, 3)
    return Parameters(np.array(kinds, np.int64), np.array(on, np.int64),
                      np.array(reason, np.int64), np.array(first_check, np.int64),
                      check[:, 0].copy(), check[:, 1].copy(), check[:, 2].copy(), special,
                      floats, len(reasons()))


@numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
def _fail(out, reason: int, duration: float) -> None:
    out[2, reason] += duration
    out[3, reason] += 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _video(first: int, n: int, fps: float, t0: float, uniform: bool, times_all, faces,
           codes, motion, kinds, on, freason, first_check, check_column, check_low,
           check_high, sp, floats, out, totals, scratch_f, scratch_i, scratch_b, scratch_u):
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
    # Views of this video's frames (indexed by the range: no sign checks in the loops).
    speech = codes[sp[S_SPEECH_COLUMN]][first:first + n]
    sync = codes[sp[S_SYNC_COLUMN]][first:first + n]
    faces = faces[first:first + n] if len(faces) else faces
    motion = motion[first:first + n] if len(motion) else motion
    held = speaking
    half = 1
    if sp[S_SILENCE_AT] >= 0:  # the silence rule is on: speech held, mouth motion summed
        speech_k = sp[S_SPEECH_K]
        # Speech (NaN reads as 0), and running sums of mouth motion in float32, as the
        # reference's cumsum of a float32 column runs.
        sums[0], counts[0] = 0.0, 0
        running = np.float32(0.0)
        any_speaking = False
        for i in range(n):
            c = speech[i]
            speaking[i] = (speech_k == 0) if c == nan else c >= speech_k
            any_speaking |= speaking[i]
            m = motion[i]
            valid = math.isfinite(m)
            if valid:
                running = np.float32(running + m)
            sums[i + 1] = running
            counts[i + 1] = counts[i] + valid
        hold_s = floats[F_HOLD_S]
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
        half = max(1, int(round(floats[F_WINDOW_S] / max(step, 1e-6) / 2)))
    # The parameters as locals: the loop stores to ``out``, which could alias an array.
    face_bit = np.uint32(1) << np.uint32(sp[S_FACE_COUNT_AT]) if sp[S_FACE_COUNT_AT] >= 0 \
        else np.uint32(0)
    silence_bit = np.uint32(1) << np.uint32(sp[S_SILENCE_AT]) if sp[S_SILENCE_AT] >= 0 \
        else np.uint32(0)
    no_face, multiple_faces, max_faces = sp[S_NO_FACE], sp[S_MULTIPLE_FACES], sp[S_MAX_FACES]
    no_audio, silence, not_speaking = sp[S_NO_AUDIO], sp[S_SILENCE], sp[S_NOT_SPEAKING]
    visible_speaker, sync_k = sp[S_VISIBLE_SPEAKER], sp[S_SYNC_K]
    min_motion = floats[F_MIN_MOUTH_MOTION]
    fails = scratch_u
    # The compare filters, one threshold at a time down its column (a tight, branch-free
    # loop): a failing frame gets its filter's bit in ``fails`` (bit f: the filter at f).
    for i in range(n):
        fails[i] = 0
    for f in range(len(kinds)):
        if not on[f] or kinds[f] != COMPARE:
            continue
        bit = np.uint32(1) << np.uint32(f)
        for j in range(first_check[f], first_check[f + 1]):
            # A view of the video's codes, indexed by the range: no sign checks, so the loop
            # vectorises.
            column = codes[check_column[j]][first:first + n]
            low, high = np.uint16(check_low[j]), np.uint16(max(check_high[j], -1) + 1)
            for i in range(n):
                fails[i] |= bit * np.uint32(np.uint16(column[i] - low) < np.uint16(high - low))
    # Then frame by frame: the face-count and silence rules (more than one reason each), and
    # every failing filter's reason counted, the first in the filters' order kept.
    input_s = 0.0
    for i in range(n):
        d = durations[i]
        input_s += d
        left = fails[i]
        face_reason = 0
        if face_bit:  # no_face overrides multiple_faces, as the reference writes
            seen = faces[i]
            face_reason = no_face if seen < 1 else (multiple_faces if seen > max_faces else 0)
            if face_reason:
                left |= face_bit
        silence_reason = 0
        if silence_bit:
            if speech[i] == nan:
                silence_reason = no_audio
            elif not held[i]:
                silence_reason = silence
            elif visible_speaker and math.isfinite(motion[i]):
                # Moving and in step, both (filters.silence); a missing agreement reads as 0.
                q = sync[i]
                lo = max(0, i - half)
                hi = min(n, i + half + 1)
                count = counts[hi] - counts[lo]
                if not ((sync_k == 0) if q == nan else q >= sync_k) or not (
                        count > 0 and (sums[hi] - sums[lo]) / count >= min_motion):
                    silence_reason = not_speaking
            if silence_reason:
                left |= silence_bit
        reason = 0
        while left:  # each failing filter, in order: the lowest bit is the first
            lowest = left & (~left + np.uint32(1))
            f = BIT_INDEX[np.uint32(lowest * np.uint32(DE_BRUIJN)) >> np.uint32(27)]
            left ^= lowest
            kind = kinds[f]
            r = freason[f] if kind == COMPARE else (
                face_reason if kind == FACE_COUNT else silence_reason)
            _fail(out, r, d)
            if not reason:
                reason = r
        dropped[i] = reason != 0
        if reason:
            out[0, reason] += d
            out[1, reason] += 1
    # Runs of kept frames become clips (filters.segments); the frames of too short a run are
    # short_run.
    short_run = sp[S_SHORT_RUN]
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
        if length + 1e-6 >= floats[F_MIN_S]:
            clips += max(1, int(math.ceil(length / floats[F_MAX_S] - 1e-9)))
            for k in range(i, j):
                kept_s += durations[k]
            kept_frames += j - i
        else:
            for k in range(i, j):
                out[0, short_run] += durations[k]
                out[1, short_run] += 1
                _fail(out, short_run, durations[k])
        i = j
    totals[0] = input_s
    totals[1] = kept_s
    totals[2] = kept_frames
    totals[3] = clips


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _file(starts, counts, fps, t0, uniform, times, faces, codes, motion, kinds, on, freason,
          first_check, check_column, check_low, check_high, sp, floats, out, totals):
    longest = counts.max() + 1 if len(counts) else 1
    scratch_f = np.empty((3, longest), np.float64)
    scratch_i = np.empty(longest, np.int64)
    scratch_b = np.empty((3, longest), np.bool_)
    scratch_u = np.empty(longest, np.uint32)
    for v in range(len(starts)):
        _video(starts[v], counts[v], fps[v], t0[v], uniform[v], times, faces, codes, motion,
               kinds, on, freason, first_check, check_column, check_low, check_high, sp,
               floats, out, totals[v], scratch_f, scratch_i, scratch_b, scratch_u)


def _exact(table, spec_kind: str, key: str, dtype) -> np.ndarray:
    """The exact column a special kernel reads (an empty one when no such filter is on)."""
    for spec in filters():
        if spec.fused == spec_kind:
            for k in spec.keys:
                if k.name == key:
                    return table.columns[k.column]
    return np.zeros(0, dtype)


def decide_file(table, params: Parameters, clips_by_video: dict[str, int] | None = None
                ) -> Funnel:
    """The funnel of one part file (``compact_table.TableFile``) under the parameters; each
    video's clip count goes to ``clips_by_video`` when given."""
    videos = table.videos
    starts = np.array([v["row"] for v in videos], np.int64)
    counts = np.array([v["frames"] for v in videos], np.int64)
    fps = np.array([v["fps"] for v in videos], np.float64)
    t0 = np.array([v["t0"] for v in videos], np.float64)
    uniform = np.array([v["uniform"] for v in videos], np.bool_)
    out = np.zeros((4, params.reasons), np.float64)
    totals = np.zeros((len(videos), 4), np.float64)
    faces = _exact(table, "face_count", "max_faces", np.int8)
    motion = _exact(table, "silence", "min_mouth_motion", np.float32)
    _file(starts, counts, fps, t0, uniform, table.times, faces, table.codes, motion,
          *params.arrays(), out, totals)
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


def decide_table(run_dir: Path, params: list[Parameters], workers: int = 1,
                 clips_by_video: dict[str, int] | None = None) -> list[Funnel]:
    """The funnel under each of ``params`` (``parameters``) from one pass over the run's
    compact table: ``workers`` threads take its files in turn (the loop releases the GIL).
    The first parameter set's clip count per video goes to ``clips_by_video`` when given.
    Raises ``compact_table.TuneTableError`` when the table is missing, stale or unreadable."""
    from concurrent.futures import ThreadPoolExecutor

    files = list(by_file(read_index(run_dir)).items())

    def one(item: tuple[str, list[dict]]) -> list[Funnel]:
        table = load_table_file(run_dir, *item)
        return [decide_file(table, p, clips_by_video if n == 0 else None)
                for n, p in enumerate(params)]

    totals = [Funnel() for _ in params]
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for funnels in pool.map(one, files):
            totals = [total + funnel for total, funnel in zip(totals, funnels, strict=True)]
    return totals
