"""Which adaptation profile a segment gets: a profile applies to the structure it was made for.

A profile adapted on the thalamus is tuned for the thalamus; applied to the liver it can only be
worse than the base model (the do-no-harm gate never looked at the liver). So the UIs resolve the
profile per segment: by default ("automatic") a segment gets the profile whose scope names it
(the ``scope`` metadata ``adapt`` writes, ``[structure]``, compared case- and separator-blind),
and every other segment gets the base model. The user can still choose a profile explicitly for
all segments, or none at all; that choice is shown in the UI, so it is never silent.

Free of torch: it works on the metadata ``waveseg.adaptation.profiles.list_profiles`` (or a
server's catalog) returns.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

AUTOMATIC = ""  # the choice that resolves the profile from the segment's name
NO_PROFILE = "-"  # the base model for every segment (not a valid profile name, so it cannot collide)
# Slicer's and the app's default segment names ("Segment_1", ...) name no structure: a profile made
# on such a segment would otherwise apply to every image's first segment. Rename to scope it.
_DEFAULT_NAME = re.compile(r"^segment \d+$")


def normalise_structure(name: str) -> str:
    """"Right_Thalamus ", "right thalamus" and "right-thalamus" -> "right thalamus"."""
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().casefold()


def profile_scope(metadata: dict[str, Any]) -> tuple[str, ...]:
    """The normalised structure names a profile is for (its ``scope``, else its ``structure``)."""
    scope = metadata.get("scope")
    if not scope:
        scope = [metadata["structure"]] if metadata.get("structure") else []
    if isinstance(scope, str):
        scope = [scope]
    return tuple(normalise_structure(s) for s in scope)


def profile_for_segment(segment_name: str, profiles: Sequence[dict[str, Any]], choice: str | None = AUTOMATIC) -> str | None:
    """The profile name to apply when segmenting ``segment_name``, or None for the base model.

    Arguments:
      segment_name: the segment's name as the user sees it.
      profiles: profile metadata dicts with "name" (and "scope" / "structure", "created").
      choice: ``AUTOMATIC`` ("" or None): the newest profile whose scope names the segment
        (never for a default name such as "Segment_1", which names no structure);
        ``NO_PROFILE``: none; any other string: that profile, for every segment.
    """
    if choice == NO_PROFILE:
        return None
    if choice:
        return choice
    wanted = normalise_structure(segment_name)
    if not wanted or _DEFAULT_NAME.match(wanted):
        return None
    matching = [p for p in profiles if wanted in profile_scope(p)]
    if not matching:
        return None
    return max(matching, key=lambda p: (str(p.get("created", "")), p["name"]))["name"]


class ScopedSegmenters:
    """The profile each segment calls for, and one loaded segmenter per profile in use.

    Arguments:
      load: ``load(profile)`` returns a segmenter (``waveseg.Segmenter`` or a remote one) with
        that profile applied; called once per profile, on the caller's thread (loading takes
        seconds: call ``get`` off the UI thread).
      list_profiles: returns the profile metadata to resolve names against (read at each call,
        so a profile made a moment ago is found).
      choice: ``AUTOMATIC``, ``NO_PROFILE`` or a profile name (see ``profile_for_segment``).
    """

    def __init__(self, load, list_profiles, choice: str | None = AUTOMATIC) -> None:
        self._load, self._list_profiles = load, list_profiles
        self.choice = choice or AUTOMATIC
        self._loaded: dict[str, object] = {}

    def profile_for(self, segment_name: str) -> str | None:
        """The profile ``segment_name`` is segmented with, or None for the base model."""
        return profile_for_segment(segment_name, self._list_profiles(), self.choice)

    def get(self, profile: str) -> object:
        """The segmenter with ``profile`` applied (loaded at the first call)."""
        if profile not in self._loaded:
            self._loaded[profile] = self._load(profile)
        return self._loaded[profile]

    def forget(self) -> None:
        """Drop the loaded segmenters, e.g. after a profile was re-adapted, imported or deleted under its name."""
        self._loaded.clear()
