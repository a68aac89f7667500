"""Long speech (issue 12, item 1): windows that overlap and continue the one before.

A window of fresh noise at every ``window_max`` frames lets lips and expression jump at each
boundary; in-painting the shared frames from the earlier window keeps the step across a boundary
like the steps inside a window.
"""

from __future__ import annotations

import numpy as np
import torch

from gaia.generation.generate import normalize_loudness, speech_extractor
from gaia.inference.s2m import LoadedS2m, window_plan
from gaia.samples.speech import speech_of_duration
from gaia.training.s2m.sampler_config import SamplerConfig

FPS = 25


def test_window_plan_overlaps_and_never_ends_on_a_stub():
    assert window_plan(40, 50, 0.25) == [(0, 40, 0)]
    plan = window_plan(138, 50, 0.25)
    assert plan == [(0, 50, 0), (38, 88, 12), (76, 126, 12), (88, 138, 38)]
    for frames in (51, 99, 1500):
        plan = window_plan(frames, 50, 0.25)
        assert plan[0][0] == 0 and plan[-1][1] == frames
        assert all(stop - start == 50 for start, stop, _ in plan)  # no stub at the end
        for (_, stop, _), (start, _, known) in zip(plan, plan[1:], strict=False):
            assert start + known == stop  # each window continues exactly where the last ended
    assert [known for _, _, known in window_plan(150, 50, 0.0)] == [0, 0, 0]  # independent


def boundary_ratio(motion: torch.Tensor, plan) -> float:
    """Mean step between consecutive frames at window seams (into a window's first frame, and
    past the last frame the window before drew) over the mean step elsewhere."""
    steps = (motion[1:] - motion[:-1]).norm(dim=1).numpy()
    seams = np.unique([edge - 1 for (_, stop, _), (start, _, _) in zip(plan, plan[1:],
                                                                       strict=False)
                       for edge in (start, stop)])
    inside = np.setdiff1d(np.arange(len(steps)), seams)
    return float(steps[seams].mean() / steps[inside].mean())


def test_a_minute_of_speech_has_no_seams(s2m_run):
    s2m = LoadedS2m.load(s2m_run, "cpu")
    extractor = speech_extractor(s2m.stats.speech_features, None)
    audio = speech_of_duration(60.0)
    frames = int(round(len(audio) / 16000 * FPS))
    speech = torch.from_numpy(extractor(normalize_loudness(audio), frames, float(FPS))
                              .astype(np.float32))
    reference = torch.zeros(s2m.stats.latent_dim)
    pose = torch.zeros(frames, 3)
    ratios = {}
    for overlap in (0.0, 0.25):
        sampler = SamplerConfig(steps=8, overlap=overlap)
        generator = torch.Generator().manual_seed(0)
        motion = s2m.sample_motion(speech, reference, pose, sampler, generator)
        assert motion.shape == (frames, s2m.stats.latent_dim)
        ratios[overlap] = boundary_ratio(motion, window_plan(frames, s2m.config.window_max,
                                                             overlap))
    print(f"seam step / inner step over {frames} frames: independent windows "
          f"{ratios[0.0]:.2f}, overlapping {ratios[0.25]:.2f}")
    assert ratios[0.0] > 1.5  # fresh noise at every boundary: a jump
    assert ratios[0.25] < 1.15  # continued: a seam steps like any other frame
