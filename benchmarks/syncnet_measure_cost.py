"""What SyncNet costs the measure stage: one real clip measured without and with
``--syncnet-weights``, the ratio of the two, and the clip's own duration for scale.

The weights are random (a ``SyncNet()`` saved to a scratch file; no published file is shipped):
the cost of a forward pass does not depend on them. Run it where the work will run: on a CPU
the network dominates, on a GPU (``torch.cuda.is_available()``) the same code moves it there.

    python benchmarks/syncnet_measure_cost.py [--case astronaut_wide_synth]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from gaia.pipeline.measure.config import MeasureConfig
from gaia.pipeline.measure.video import Models, measure_video
from gaia.pipeline.speech.syncnet import SyncNet
from gaia.samples.speaker_cases import CASES, build_case


def timed(video: Path, out: Path, config: MeasureConfig) -> tuple[float, dict]:
    models = Models.load(config)  # loading is once per worker: not counted
    started = time.perf_counter()
    record = measure_video(str(video), video.stem, "bench", out, models, config)
    return time.perf_counter() - started, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="astronaut_wide_synth",
                        choices=[c.name for c in CASES], help="the clip (speaker_cases)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        video = build_case(args.case, folder / "videos")
        weights = folder / "syncnet_v2.model"
        torch.save(SyncNet().state_dict(), weights)
        for name in ("plain", "with"):
            (folder / name).mkdir()
        plain, record = timed(video, folder / "plain", MeasureConfig())
        withnet, _ = timed(video, folder / "with",
                           MeasureConfig(syncnet_weights=str(weights)))
    seconds = record["duration_s"]
    device = "cuda" if torch.cuda.is_available() else f"cpu ({torch.get_num_threads()} threads)"
    print(f"clip {args.case}: {seconds:.1f} s of {record['width']}x{record['height']} video; "
          f"SyncNet on {device}")
    print(f"measure without SyncNet: {plain:6.1f} s  ({plain / seconds:.2f} x real time)")
    print(f"measure with SyncNet:    {withnet:6.1f} s  ({withnet / seconds:.2f} x real time)")
    print(f"ratio with / without:    {withnet / plain:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
