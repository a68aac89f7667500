"""Shared fixtures: real-media clips (DESIGN.md section 8), built once per test session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FPS = 25.0


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def astronaut_landmarks() -> np.ndarray:
    from gaia.pipeline.faces import primary_face_landmarks
    from gaia.samples.shipped import astronaut

    return primary_face_landmarks(astronaut())


def portrait_clip(path: Path, seconds: float, audio: np.ndarray | None,
                  image: np.ndarray | None = None, fps: float = FPS) -> Path:
    """A real face (the astronaut photo unless ``image``) moving gently, with ``audio``."""
    from gaia.pipeline.video_writer import write_video
    from gaia.samples.clips import portrait_motion
    from gaia.samples.shipped import astronaut

    image = astronaut() if image is None else image
    frames = portrait_motion(image, int(round(seconds * fps)), seed=1)
    return write_video(path, frames, fps, audio=audio, audio_rate=16000)


@pytest.fixture(scope="session")
def talking_clip(media_dir) -> Path:
    """6 s of the astronaut: 3 s of synthesized speech, then 3 s of silence."""
    from gaia.samples.speech import silence, speech_of_duration

    audio = np.concatenate([speech_of_duration(3.0), silence(3.0)])
    return portrait_clip(media_dir / "astronaut_speech_then_silence.mp4", 6.0, audio)


@pytest.fixture(scope="session")
def cartoon_clip(media_dir) -> Path:
    """About 3 s of Big Buck Bunny (no human face), re-encoded with speech."""
    import decord

    from gaia.pipeline.video_writer import write_video
    from gaia.samples.shipped import bigbuckbunny_path
    from gaia.samples.speech import speech_of_duration

    reader = decord.VideoReader(str(bigbuckbunny_path()))
    count = min(len(reader), 75)
    frames = reader.get_batch(list(range(count))).asnumpy()
    return write_video(media_dir / "cartoon.mp4", frames, FPS,
                       audio=speech_of_duration(count / FPS), audio_rate=16000)


@pytest.fixture(scope="session")
def measured_sample(tmp_path_factory):
    """The demo sample (4 s clips) measured into a run directory, in process (no Ray).

    Each status record also keeps the clip's expectation from the sample index.
    """
    from gaia.pipeline.measure_config import MeasureConfig
    from gaia.pipeline.measure_video import Models, measure_video
    from gaia.pipeline.provenance import write_run_config
    from gaia.pipeline.run_dir import RunDir
    from gaia.samples.build import build_demo_sample

    root = tmp_path_factory.mktemp("sample-run")
    clips = build_demo_sample(root / "raw", seconds=4.0)
    run = RunDir(root / "run")
    run.make()
    config = MeasureConfig()
    write_run_config(run, config)
    models = Models.load(config)
    for clip in clips:
        if clip.kind in ("talk", "filter", "noface"):
            record = measure_video(str(clip.path), clip.path.stem, clip.path.parent.name,
                                   run.metrics, models, config)
            record["expectation"] = clip.expectation
            run.write_status(record)
    run.write_videos_table()
    return run


@pytest.fixture(scope="session")
def sample_shards(measured_sample, tmp_path_factory):
    """The measured sample cut into shards with the vae preset, in process (no Ray).

    Returns the shards folder (``.../shards/vae``): a few real clips of real faces with speech.
    """
    import shutil

    from gaia.pipeline.extract_job import ExtractConfig, run_extract

    root = tmp_path_factory.mktemp("shards") / "run"
    shutil.copytree(measured_sample.root, root)
    run_extract(root, "vae", config=ExtractConfig(shard_mb=0.5, val_fraction=0.0),
                log=lambda _: None, use_ray=False)
    return root / "shards" / "vae"
