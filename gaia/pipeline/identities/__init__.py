"""Run-wide identities: every video's person tracks joined across videos into the people of a run.

GAIA, section 3 and Table 1 count a corpus in distinct people (#IDs), and appendix A's splits
are only honest when no person is in both train and validation: both need one identity per
person across the whole run, not one per video. :mod:`.cluster` clusters the per-video person
tracks (the mean of their dlib face embeddings) into such identities, incrementally: adding
videos never renames an identity found before.
"""

from gaia.pipeline.identities.cluster import (
    Assignment,
    ClusterConfig,
    KnownIdentities,
    cluster_tracks,
    track_weights,
)

__all__ = ["Assignment", "ClusterConfig", "KnownIdentities", "cluster_tracks", "track_weights"]
