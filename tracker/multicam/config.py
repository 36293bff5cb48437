"""Config of the identity registry: the site description (overlaps, links, homographies) and thresholds."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.core.config import config_field as _f


@dataclass(frozen=True)
class LinkConfig:
    """A walkable connection between two cameras that do not overlap (blind gap, corridor)."""

    a: str = _f("", "camera id at one end.")
    b: str = _f("", "camera id at the other end.")
    min_travel: float = _f(0.0, "shortest walk in seconds from a's view to b's.", 0.0, 86400.0)
    max_travel: float = _f(30.0, "longest walk in seconds; a person seen later in b is not linked by this route.",
                           0.0, 86400.0)
    bidirectional: bool = _f(True, "the same times apply from b to a.")


@dataclass(frozen=True)
class HomographyConfig:
    """Maps one camera's image pixels to a common plane shared by overlapping cameras."""

    camera: str = _f("", "camera id.")
    matrix: tuple[float, ...] = _f((), "3x3 homography, row-major (9 numbers), image pixels -> common plane.")


@dataclass(frozen=True)
class MulticamConfig:
    """Cross-camera identities: the site description (overlaps, links, homographies) and the registry.

    Only the site description changes between sites; the thresholds are physical (seconds,
    person heights, cosine distance) and meant to be left alone.
    """

    enabled: bool = _f(False, "give each person one global identity across cameras and across re-entries (on "
                       "PETS09-MC: cross-camera IDF1 35.9 -> 58.6, per-camera HOTA 42.5 -> 43.9, public "
                       "detections). Off: ids are per camera and per track.")
    overlaps: tuple[tuple[str, ...], ...] = _f((), "pairs of cameras whose views overlap, e.g. [[cam1, cam2]]: "
                                               "one person may be in both at once.")
    links: tuple[LinkConfig, ...] = _f((), "connections between non-overlapping cameras with travel times. When any "
                                       "overlap or link is given, identities move only along them.")
    homographies: tuple[HomographyConfig, ...] = _f((), "optional per-camera maps to a common plane, so that "
                                                    "people in overlapping views are compared by position too.")
    max_appearance_distance: float = _f(
        0.3, "largest cosine distance between a new track and an identity's gallery for a link. Higher: links "
        "across bigger changes of light and pose, more wrong merges.", 0.0, 2.0)
    match_threshold: float = _f(0.3, "largest total cost accepted when assigning identities (appearance minus "
                                "the geometry bonus).", -1.0, 2.0)
    geometry_weight: float = _f(0.15, "cost bonus when overlapping views agree on the position. Higher: trusts "
                                "geometry over appearance.", 0.0, 1.0)
    overlap_distance: float = _f(1.0, "in overlapping views, the largest distance between positions in the common "
                                 "plane, in person heights. Higher: tolerates homography error.", 0.0, 100.0)
    presence_window: float = _f(1.0, "seconds after its last detection during which a track still holds its "
                                "identity in its camera. Higher: safer against duplicates, slower hand-over.",
                                0.0, 600.0)
    overlap_handover: float = _f(3.0, "seconds between leaving one view and appearing in an overlapping one.",
                                 0.0, 600.0)
    max_speed: float = _f(2.0, "fastest walk in person heights per second, for re-entry into the same camera.",
                          0.0, 100.0)
    reentry_max_gap: float = _f(
        1.0, "longest absence in seconds after which a new track in the same camera may still take back an identity "
        "whose track walked out through the edge of the view; a track lost inside the view (the camera's tracker "
        "broke it) is relinked after any absence. Someone who walked out and came back later is a new identity "
        "(unless they are linked through another camera). Chosen on PETS09-MC, where "
        "longer re-entries linked by appearance were mostly other people (bench/mc_replay.py --variants "
        "full-reentry). Higher: people keep their identity when they come back into one camera, at the cost of "
        "wrong links between look-alikes.", 0.0, 1e9)
    reentry_margin: float = _f(1.0, "extra distance in person heights allowed for re-entry.", 0.0, 100.0)
    gap_penalty: float = _f(0.05, "added to the appearance distance for each doubling of the time an identity has "
                            "been out of sight beyond gap_scale: people away longer need a closer look-alike "
                            "(more newcomers to confuse them with).", 0.0, 1.0)
    gap_scale: float = _f(10.0, "seconds of absence that cost one gap_penalty.", 0.1, 1e6)
    correction_seconds: float = _f(1.0, "seconds two identities must stand at the same place in overlapping views "
                                   "before they are merged (or one identity at two places before it is split).",
                                   0.0, 600.0)
    review_embeddings: int = _f(10, "embeddings after which a track's identity is checked again: a newcomer that "
                                "now clearly matches a known identity is merged into it, a linked track farther than "
                                "max_appearance_distance from everything else its identity holds is split off.",
                                1, 100000)
    review_margin: float = _f(0.05, "how much below match_threshold a late match must score to merge.", 0.0, 1.0)
    memory_seconds: float = _f(300.0, "seconds an identity stays matchable after it was last seen; also the "
                               "retention limit of stored appearance summaries (in memory and in the store). Higher: "
                               "recognises people who come back later, more candidates to confuse.", 0.0, 1e7)
    gallery_size: int = _f(10, "track summaries kept per identity.", 1, 1000)
    min_embeddings: int = _f(3, "embeddings a track needs before its summary joins the gallery.", 1, 1000)
    max_identities: int = _f(10000, "identities kept in memory; the longest unseen are forgotten first.",
                             1, 10_000_000)
    adapt: bool = _f(True, "site adaptation of appearance: each camera's mean appearance of the people it sees, "
                     "learned online from finished tracks (no ground truth), is subtracted from its ReID features "
                     "before identities are compared; starts as the identity transform. Off: raw features.")
    adapt_prior_tracks: float = _f(5.0, "tracks of a camera after which its centring is at half strength. Higher: "
                                   "slower, steadier adaptation; lower: adapts after fewer people.", 0.0, 1e6)
    adapt_horizon_tracks: float = _f(500.0, "effective number of recent tracks each camera's centre averages over. "
                                     "Higher: steadier; lower: follows changes of light sooner.", 1.0, 1e9)
    learn_topology: bool = _f(True, "learn which cameras overlap and which connect (with travel times) from "
                              "confident, unambiguous hand-overs, and use that like a written topology; written "
                              "overlaps and links win for their camera pairs. See `run.py registry topology`.")
    topology_min_handovers: int = _f(4, "confident hand-overs a camera pair needs before it is learned as an "
                                     "overlap or a link (never from one). Higher: later, fewer false connections "
                                     "from recurring look-alikes.", 2, 100000)
    topology_max_distance: float = _f(0.2, "largest appearance distance of a hand-over counted as evidence for the "
                                      "learned topology. Lower: less but cleaner evidence.", 0.0, 2.0)
    topology_margin: float = _f(0.1, "how much farther every other identity must be for a hand-over to count as "
                                "unambiguous. Higher: less but cleaner evidence.", 0.0, 2.0)
    store: str | None = _f(None, "SQLite file where the registry (identity ids and appearance summaries) is saved "
                           "on shutdown and every save_interval seconds, and restored on start, so a restart keeps "
                           "identities. Relative paths are under output.dir. Unset: nothing is stored on disk "
                           "(biometric data; stored summaries expire after memory_seconds, and "
                           "`run.py registry purge` deletes one identity).")
    save_interval: float = _f(60.0, "seconds between saves of the registry while running (0 = only on shutdown).",
                              0.0, 86400.0)

