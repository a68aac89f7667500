"""Average keypoint distance (AKD) as the video-driven literature defines it (Siarohin et al.,
FOMM, 2019, section 4; GAIA tables 2 and 7): one detector runs on the real frame and on the
generated one, and AKD is the mean distance in pixels between the two detections' keypoints.
Both sides come from the same detector, so its bias cancels; its noise does not, and
the metric's floor is the detector's noise, not zero.

The detector is passed in (``LandmarkFn``: uint8 ``(S, S, 3)`` RGB -> ``(68, 2)`` or None);
frames where it finds no face on either side are counted, not scored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

LandmarkFn = Callable[[np.ndarray], "np.ndarray | None"]


def keypoint_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance between two ``(K, 2)`` keypoint sets, in their pixels."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"keypoints must be two (K, 2) sets of one shape, got {a.shape} and "
                         f"{b.shape}")
    return float(np.linalg.norm(a - b, axis=1).mean())


@dataclass
class KeypointScore:
    """AKD over frames: distances where both detections exist, misses counted by side."""

    detector: LandmarkFn
    distances: list[float] = field(default_factory=list)
    missed_real: int = 0
    missed_generated: int = 0

    def add_detections(self, found_real: np.ndarray | None, generated: np.ndarray
                       ) -> np.ndarray | None:
        """Score one generated frame (uint8 RGB) against the real frame's detection (found
        once by the caller, who may reuse it); returns the generated frame's detection (or
        None) so callers can keep the track for MSI."""
        found = self.detector(generated)
        if found_real is None:
            self.missed_real += 1
        if found is None:
            self.missed_generated += 1
        if found_real is not None and found is not None:
            self.distances.append(keypoint_distance(found_real, found))
        return found

    def report(self) -> dict:
        mean = float(np.mean(self.distances)) if self.distances else None
        return {"akd": mean, "akd_frames": len(self.distances),
                "akd_missed_real": self.missed_real,
                "akd_missed_generated": self.missed_generated}
