"""Hands over the main face, frame by frame: the ``hand_cover`` measure (paper, appendix A.1
drops frames where a hand or a mask covers the mouth).

Palm detection is the costly model (about 10 ms a call on one core), so it runs on a square
around the face only, every ``every`` frames; a hand it finds is then followed frame by frame
from its own landmarks (about 5 ms, no palm detection) until the hand-landmark model no longer
sees it. A frame with no hand near the face costs one palm detection every ``every`` frames.
"""

from __future__ import annotations

import numpy as np

from gaia.pipeline.face.hand_cover import hand_cover, hand_size
from gaia.pipeline.face.tflite.hands import Hand, HandFinder

REGION = 3.0  # palm detection looks in a square this many face sizes across, on the face
# A hand near a face is about as large as the face: its palm (wrist to the middle finger's
# base, or across the knuckles) measured 0.26-0.46 of the face box's side on real video. The
# palm detector also fires on a mouth and chin (score 0.59 on the astronaut) and the landmark
# model then fits a crumpled "hand" a tenth of the face's size there: refused by size.
MIN_HAND_SHARE = 0.18


class HandWatch:
    """Stateful over one video's frames: ``cover(rgb, landmarks, box)`` per frame."""

    def __init__(self, finder: HandFinder, every: int) -> None:
        self.finder = finder
        self.every = max(1, every)
        self._hands: list[Hand] = []
        self._since_find = self.every

    def cover(self, rgb: np.ndarray, landmarks: np.ndarray | None, box: np.ndarray | None
              ) -> float:
        """Share of the lower face covered by hands in this frame (NaN: no face)."""
        self._since_find += 1
        self._hands = [h for h in (self.finder.track(rgb, h) for h in self._hands) if h]
        if landmarks is None or box is None:
            return float("nan")
        side = float(max(box[2] - box[0], box[3] - box[1]))
        if self._since_find >= self.every:
            self._since_find = 0
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            half = REGION * side / 2
            found = self.finder.find(rgb, np.array([cx - half, cy - half, cx + half, cy + half]))
            self._hands = _merged(self._hands, found)
        self._hands = [h for h in self._hands if hand_size(h.points) >= MIN_HAND_SHARE * side]
        return hand_cover(landmarks, self._hands, rgb.shape)

    def reset(self) -> None:
        """Forget the hands (a cut: the next shot's hands are found afresh)."""
        self._hands = []
        self._since_find = self.every


def _merged(tracked: list[Hand], found: list[Hand]) -> list[Hand]:
    """The tracked hands plus the found ones that are not one of them (wrists apart by more
    than a palm)."""
    hands = list(tracked)
    for hand in found:
        size = float(np.ptp(hand.points, axis=0).max())
        if all(np.hypot(*(hand.points[0] - h.points[0])) > 0.5 * size for h in hands):
            hands.append(hand)
    return hands[:2]  # a person has two hands; more are other people's, far from this mouth
