"""The WebDataset shard sample, version 2 (docs/shards.md), and its checker.

One sample is one clip under one key ``{source}_{segment:04d}`` (safe characters only). Its
members, stored in the tar as ``KEY.MEMBER``:

======================  ====================================================================
``mp4``                 frames, 256 x 256, H.264, 25 fps
``flac``                16 kHz mono audio (absent when the clip has no audio)
``speech.npy``          float16, ``(2 * frames, D)``: two 50 Hz feature rows per frame (idem)
``landmarks.npy``       float32, ``(frames, 68, 2)``, crop pixels
``pose.npy``            float32, ``(frames, 3)``: pitch, yaw, roll in degrees
``json``                UTF-8 object: key, schema version, source, times, provenance, ...
``instruction.json``    present exactly in ``instruct`` samples: the instruction the
                        clip's action follows (appendix E, ``gaia.schemas.instruction``)
======================  ====================================================================

Version 2 added ``instruction.json``; version 1 samples (which never hold it) still read.

Every per-frame array has exactly as many rows as the mp4 has frames. Only ``.npy`` (read with
``allow_pickle=False``), ``.json``, media and text are allowed: never pickles.
``manifest.parquet`` beside the shards lists every sample once (``MANIFEST_SCHEMA``).
"""

from __future__ import annotations

import functools
import io
import json
import math
import re

import numpy as np
import numpy.lib.format as npy_format
import pyarrow as pa

from gaia.schemas.instruction import INSTRUCTION_MEMBER, instruction_problems
from gaia.schemas.keys import check_key

SHARD_SCHEMA_VERSION = 2  # 2: instruction.json in instruct samples (appendix E)
READABLE_SHARD_VERSIONS = (1, 2)  # what the checkers accept: 2 only added a member
FPS = 25
FRAME_SIZE = (256, 256)  # width, height
AUDIO_RATE = 16000
SPEECH_ROWS_PER_FRAME = 2
N_LANDMARKS = 68
SPLITS = ("train", "val")

REQUIRED_MEMBERS = ("mp4", "landmarks.npy", "pose.npy", "json")
AUDIO_MEMBERS = ("flac", "speech.npy")  # present exactly when json has_audio is true
INSTRUCTION_MEMBERS = (INSTRUCTION_MEMBER,)  # present exactly in instruct samples
MEMBERS = REQUIRED_MEMBERS + AUDIO_MEMBERS + INSTRUCTION_MEMBERS

ALLOWED_SUFFIXES = frozenset({"npy", "json", "mp4", "flac", "txt"})
PICKLE_SUFFIXES = frozenset({"pyd", "pickle", "pkl", "pth"})  # named in problems

JSON_FIELDS: dict[str, type | tuple[type, ...]] = {
    "key": str,
    "schema_version": int,
    "source_video": str,
    "start_s": (int, float),
    "end_s": (int, float),
    "frames": int,
    "fps": (int, float),
    "has_audio": bool,
    "identity": str,
    "split": str,
    "provenance": dict,
}

# Fields a sample may carry (checked when present): how its audio was put in sync with the
# frames (GAIA A.1, "lip movements and speech are not aligned"). av_offset_s: the source's audio
# stream start minus its video stream start; sync_offset_s: the measured lag the audio was
# moved by (positive: the source's audio was late); sync_note: why no lag was applied.
OPTIONAL_JSON_FIELDS: dict[str, type | tuple[type, ...]] = {
    "av_offset_s": (int, float),
    "sync_offset_s": (int, float),
    "sync_note": str,
}

_MEMBER_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

_MANIFEST_FIELDS: list[tuple[str, pa.DataType, str]] = [
    ("key", pa.string(), "the sample's key, unique over all shards"),
    ("shard", pa.string(), "file name of the shard holding it, e.g. shard-000003.tar"),
    ("source_video", pa.string(), "video_id of the source video"),
    ("path", pa.string(), "the source video's path or URI"),
    ("start_s", pa.float64(), "clip start in the source, seconds"),
    ("end_s", pa.float64(), "clip end in the source, seconds"),
    ("frames", pa.int32(), "frames in the clip (rows of every per-frame array)"),
    ("identity", pa.string(), "speaker identity; splits never share one"),
    ("split", pa.string(), "train or val"),
    ("has_audio", pa.bool_(), "whether flac and speech.npy are present"),
]

MANIFEST_SCHEMA = pa.schema(
    [pa.field(name, kind, metadata={"doc": doc}) for name, kind, doc in _MANIFEST_FIELDS]
)


def member_suffix(member: str) -> str:
    """The part after the last dot: ``speech.npy`` -> ``npy``, ``mp4`` -> ``mp4``."""
    return member.rsplit(".", 1)[-1].lower()


def check_member(member: str) -> str:
    """Return ``member`` if it is a well-formed name with an allowed suffix, else ValueError."""
    if not _MEMBER_NAME.match(member):
        raise ValueError(f"bad member name {member!r}: dot-separated letters, digits, '_', '-'")
    suffix = member_suffix(member)
    if suffix not in ALLOWED_SUFFIXES:
        kind = "pickle-like " if suffix in PICKLE_SUFFIXES else ""
        raise ValueError(f"{kind}member {member!r} not allowed: suffix must be one of "
                         f"{sorted(ALLOWED_SUFFIXES)}")
    return member


_HEADER_READERS = {(1, 0): npy_format.read_array_header_1_0,
                   (2, 0): npy_format.read_array_header_2_0}


@functools.lru_cache(maxsize=4096)
def _npy_header(header: bytes) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) of a ``.npy`` header, parsed by numpy's own (literal-only)
    reader. Cached: a shard's arrays of one kind share a handful of headers, and parsing one
    costs as much as copying the array it describes."""
    stream = io.BytesIO(header)
    reader = _HEADER_READERS.get(npy_format.read_magic(stream))
    if reader is None:
        raise ValueError("unsupported .npy version")
    return reader(stream)


def load_npy(data: bytes) -> np.ndarray:
    """One array from ``.npy`` bytes, as ``np.load(allow_pickle=False)`` reads it; object
    arrays (pickles), ``.npz`` and a size that disagrees with the header are refused."""
    if not data.startswith(b"\x93NUMPY") or len(data) < 12:
        raise ValueError("not a single .npy array")
    header_len = int.from_bytes(data[8:10] if data[6] == 1 else data[8:12], "little")
    offset = (10 if data[6] == 1 else 12) + header_len
    shape, fortran, dtype = _npy_header(bytes(data[:offset]))
    if dtype.hasobject:
        raise ValueError("an object array (a pickle) is refused")
    count = math.prod(shape)
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"a .npy of {len(data) - offset} data bytes for shape {shape} "
                         f"of {dtype}")
    array = np.frombuffer(data, dtype, count=count, offset=offset)
    array = array.reshape(shape[::-1]).T if fortran else array.reshape(shape)
    return array.copy(order="K")  # writable, its own memory, the layout np.load gives


def dump_npy(array: np.ndarray) -> bytes:
    """One array as ``.npy`` bytes, refusing object arrays (no pickles ever enter a shard)."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def manifest_row(meta: dict, shard: str, path: str = "") -> dict:
    """A ``MANIFEST_SCHEMA`` row for a sample from its JSON member and its shard's file name."""
    return {
        "key": meta["key"], "shard": shard, "source_video": meta["source_video"],
        "path": path or str(meta.get("path", "")), "start_s": float(meta["start_s"]),
        "end_s": float(meta["end_s"]), "frames": int(meta["frames"]),
        "identity": meta["identity"], "split": meta["split"],
        "has_audio": bool(meta["has_audio"]),
    }


def validate_sample(members: dict[str, bytes], decode_media: bool = True,
                    key: str | None = None) -> list[str]:
    """Problems with one sample, for a person to read; empty when it meets the spec.

    ``members`` maps member names (``mp4``, ``speech.npy``, ...) to bytes. Names starting with
    ``__`` (WebDataset's ``__key__``, ``__url__``) are metadata, not members; the key is
    ``key``, else ``__key__``, else the JSON's. ``decode_media=False`` skips decoding the mp4
    and the flac (their frame count, size and duration are then not checked).
    """
    problems: list[str] = []
    if key is None:
        key = members.get("__key__")
        key = key.decode() if isinstance(key, bytes) else key
    data = {name: blob for name, blob in members.items() if not name.startswith("__")}
    problems += _member_problems(data)
    meta = _json_problems(data.get("json"), problems)
    key = key if key is not None else (meta or {}).get("key")
    if not isinstance(key, str):
        problems.append("no key: neither given nor in the json")
    else:
        try:
            check_key(key)
        except ValueError as err:
            problems.append(f"bad key: {err}")
        if meta is not None and meta.get("key") != key:
            problems.append(f"json key {meta.get('key')!r} is not the sample key {key!r}")
    frames = (meta or {}).get("frames")
    frames = frames if isinstance(frames, int) and not isinstance(frames, bool) and frames > 0 \
        else None
    if meta is not None and isinstance(meta.get("has_audio"), bool):
        for name in AUDIO_MEMBERS:
            if meta["has_audio"] != (name in data):
                state = "missing" if meta["has_audio"] else "present"
                problems.append(f"{name} {state} but json has_audio is {meta['has_audio']}")
    problems += _array_problems(data, frames)
    if meta is not None:
        problems += _instruction_problems(data, meta)
    if decode_media:
        if "mp4" in data:
            problems += _mp4_problems(data["mp4"], frames)
        if "flac" in data:
            problems += _flac_problems(data["flac"], frames)
    return problems


def _member_problems(data: dict[str, bytes]) -> list[str]:
    problems = [f"missing member {name}" for name in REQUIRED_MEMBERS if name not in data]
    for name in sorted(data):
        try:
            check_member(name)
        except ValueError as err:
            problems.append(str(err))
            continue
        if name not in MEMBERS:
            problems.append(f"unknown member {name!r} (spec version {SHARD_SCHEMA_VERSION})")
    return problems


def _json_problems(blob: bytes | None, problems: list[str]) -> dict | None:
    """The JSON member as a dict (None if unusable); appends what is wrong to ``problems``."""
    if blob is None:
        return None
    try:
        meta = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        problems.append(f"json does not parse: {err}")
        return None
    if not isinstance(meta, dict):
        problems.append(f"json is a {type(meta).__name__}, not an object")
        return None
    for name, kind in JSON_FIELDS.items():
        value = meta.get(name)
        if name not in meta:
            problems.append(f"json lacks field {name!r}")
        elif not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
            problems.append(f"json field {name!r} has the wrong type: {value!r}")
    for name, kind in OPTIONAL_JSON_FIELDS.items():
        value = meta.get(name)
        if name in meta and (not isinstance(value, kind) or isinstance(value, bool)):
            problems.append(f"json field {name!r} has the wrong type: {value!r}")
    if meta.get("schema_version", SHARD_SCHEMA_VERSION) not in READABLE_SHARD_VERSIONS:
        problems.append(f"json schema_version {meta['schema_version']!r}, expected one of "
                        f"{list(READABLE_SHARD_VERSIONS)}")
    if isinstance(meta.get("frames"), int) and meta["frames"] <= 0:
        problems.append(f"json frames {meta['frames']} is not positive")
    if isinstance(meta.get("fps"), (int, float)) and meta["fps"] != FPS:
        problems.append(f"json fps {meta['fps']}, expected {FPS}")
    if isinstance(meta.get("split"), str) and meta["split"] not in SPLITS:
        problems.append(f"json split {meta['split']!r} is not one of {list(SPLITS)}")
    start, end, frames = meta.get("start_s"), meta.get("end_s"), meta.get("frames")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                  for v in (start, end, frames))
    if numbers and abs((end - start) - frames / FPS) > 1.0 / FPS + 1e-6:
        problems.append(f"json end_s - start_s = {end - start:.3f} s but {frames} frames "
                            f"last {frames / FPS:.3f} s")
    return meta


def is_instruct(meta: dict) -> bool:
    """Whether a sample's JSON says it was cut by a preset that follows instructions (its
    recorded thresholds have ``instructions.enabled``): then it holds ``instruction.json``."""
    thresholds = meta.get("thresholds")
    rules = thresholds.get("instructions") if isinstance(thresholds, dict) else None
    return isinstance(rules, dict) and rules.get("enabled") is True


def _instruction_problems(data: dict[str, bytes], meta: dict) -> list[str]:
    """``instruction.json`` is present exactly in instruct samples, of version 2 or later,
    valid, and its times agree with the clip's (``gaia.schemas.instruction``)."""
    present, wanted = INSTRUCTION_MEMBER in data, is_instruct(meta)
    if present and meta.get("schema_version") == 1:
        return [f"{INSTRUCTION_MEMBER} in a version 1 sample (the member came in version 2)"]
    if present != wanted:
        return [f"{INSTRUCTION_MEMBER} missing from an instruct sample (its thresholds have "
                "instructions.enabled)" if wanted else
                f"{INSTRUCTION_MEMBER} present but the sample's thresholds do not follow "
                "instructions"]
    if not present:
        return []
    return instruction_problems(data[INSTRUCTION_MEMBER], meta.get("start_s"), meta.get("end_s"))


def _array_problems(data: dict[str, bytes], frames: int | None) -> list[str]:
    """Dtype, shape and row count of each ``.npy`` member against ``frames`` (if known)."""
    expected = {
        "landmarks.npy": (np.float32, lambda n: (n, N_LANDMARKS, 2)),
        "pose.npy": (np.float32, lambda n: (n, 3)),
        "speech.npy": (np.float16, None),
    }
    problems = []
    for name, (dtype, shape_of) in expected.items():
        if name not in data:
            continue
        try:
            array = load_npy(data[name])
        except ValueError as err:
            problems.append(f"{name} is not a plain .npy array: {err}")
            continue
        if array.ndim == 0:
            problems.append(f"{name} is a scalar, not per-frame rows")
            continue
        if array.dtype != dtype:
            problems.append(f"{name} has dtype {array.dtype}, expected {np.dtype(dtype)}")
        if shape_of is not None:
            want = shape_of(array.shape[0] if frames is None else frames)
            if array.shape != want:
                problems.append(f"{name} has shape {array.shape}, expected {want}")
        else:
            rows = None if frames is None else SPEECH_ROWS_PER_FRAME * frames
            if array.ndim != 2 or array.shape[1] == 0 or rows not in (None, array.shape[0]):
                problems.append(f"{name} has shape {array.shape}, expected ({rows}, D)")
        if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
            problems.append(f"{name} holds non-finite values")
    return problems


def _mp4_problems(blob: bytes, frames: int | None) -> list[str]:
    """Decode the mp4 from memory: H.264, 256 x 256, 25 fps, as many frames as the JSON says."""
    import av

    problems = []
    try:
        with av.open(io.BytesIO(blob), mode="r") as container:
            if not container.streams.video:
                return ["mp4 has no video stream"]
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if stream.codec_context.name != "h264":
                problems.append(f"mp4 codec is {stream.codec_context.name}, expected h264")
            rate = stream.average_rate
            if rate is not None and abs(float(rate) - FPS) > 1e-3:
                problems.append(f"mp4 frame rate is {float(rate):g}, expected {FPS}")
            count, sizes = 0, set()
            for frame in container.decode(stream):
                count += 1
                sizes.add((frame.width, frame.height))
    except Exception as err:  # noqa: BLE001 - any decoder failure is a problem to report
        return problems + [f"mp4 does not decode: {type(err).__name__}: {err}"]
    if sizes - {FRAME_SIZE}:
        problems.append(f"mp4 frame size {sorted(sizes)}, expected {FRAME_SIZE}")
    if frames is not None and count != frames:
        problems.append(f"mp4 has {count} frames but json frames is {frames}")
    if count == 0:
        problems.append("mp4 has no frames")
    return problems


def _flac_problems(blob: bytes, frames: int | None) -> list[str]:
    """Decode the flac from memory: 16 kHz mono, lasting ``frames / 25`` s within one frame."""
    import soundfile

    try:
        audio, rate = soundfile.read(io.BytesIO(blob), dtype="float32", always_2d=True)
        kind = soundfile.info(io.BytesIO(blob)).format
    except Exception as err:  # noqa: BLE001 - any decoder failure is a problem to report
        return [f"flac does not decode: {type(err).__name__}: {err}"]
    problems = []
    if kind != "FLAC":
        problems.append(f"flac member holds {kind}, not FLAC")
    if rate != AUDIO_RATE or audio.shape[1] != 1:
        problems.append(f"flac is {rate} Hz with {audio.shape[1]} channels, expected "
                        f"{AUDIO_RATE} Hz mono")
    if frames is not None and rate > 0:
        seconds = audio.shape[0] / rate
        if not math.isclose(seconds, frames / FPS, abs_tol=1.0 / FPS + 1e-9):
            problems.append(f"flac lasts {seconds:.3f} s but {frames} frames last "
                            f"{frames / FPS:.3f} s")
    return problems
