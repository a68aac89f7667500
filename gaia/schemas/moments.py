"""Per-dimension sums and sums of squares of motion, pose and speech rows: what each shard's
part records, so the statistics of the whole output merge exactly, in float64, from the parts
of any number of runs."""

from __future__ import annotations

import numpy as np

STD_FLOOR_VAR = 1e-12  # std = sqrt(max(var, this)): a constant dimension must not divide by 0


class Moments:
    """Row count, float64 sums and sums of squares of motion, pose and speech rows."""

    NAMES = ("motion", "pose", "speech")

    def __init__(self, state: dict | None = None) -> None:
        state = state or {}
        self.frames, self.clips = int(state.get("frames", 0)), int(state.get("clips", 0))
        self.speech_rows = int(state.get("speech_rows", 0))
        self.sums = {n: np.asarray(state[f"{n}_sum"], np.float64) for n in self.NAMES
                     if f"{n}_sum" in state}
        self.squares = {n: np.asarray(state[f"{n}_sumsq"], np.float64) for n in self.NAMES
                        if f"{n}_sumsq" in state}

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        for name in self.NAMES:  # all checked before any is added: never half a clip
            if name in self.sums and self.sums[name].shape != arrays[name].shape[1:]:
                raise ValueError(f"{name} has {arrays[name].shape[1]} dimensions, earlier "
                                 f"clips {self.sums[name].shape[0]}")
        for name in self.NAMES:
            rows = arrays[name].astype(np.float64)
            self.sums[name] = self.sums.get(name, 0.0) + rows.sum(0)
            self.squares[name] = self.squares.get(name, 0.0) + np.square(rows).sum(0)
        self.frames += len(arrays["motion"])
        self.speech_rows += len(arrays["speech"])
        self.clips += 1

    def merge(self, other: Moments) -> None:
        for name in other.sums:
            if name in self.sums and self.sums[name].shape != other.sums[name].shape:
                raise ValueError(f"{name} dimensions differ between shards: "
                                 f"{self.sums[name].shape[0]} and {other.sums[name].shape[0]}")
            self.sums[name] = self.sums.get(name, 0.0) + other.sums[name]
            self.squares[name] = self.squares.get(name, 0.0) + other.squares[name]
        self.frames += other.frames
        self.speech_rows += other.speech_rows
        self.clips += other.clips

    def mean_std(self, name: str) -> tuple[list[float], list[float]]:
        count = self.speech_rows if name == "speech" else self.frames
        mean = self.sums[name] / count
        var = self.squares[name] / count - np.square(mean)
        return mean.tolist(), np.sqrt(np.maximum(var, STD_FLOOR_VAR)).tolist()

    def to_json(self) -> dict:
        state = {"frames": self.frames, "clips": self.clips, "speech_rows": self.speech_rows}
        for name in self.sums:
            state[f"{name}_sum"] = self.sums[name].tolist()
            state[f"{name}_sumsq"] = self.squares[name].tolist()
        return state
