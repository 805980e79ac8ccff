"""Segment a structure from examples, without training (in-context proposals).

k annotated slices (from this volume or another) become an ``ExampleSet`` of the encoder's
embeddings and masks; on a new slice, the similarity of its embedding to the examples' features
inside and outside their masks gives point prompts and a coarse mask prompt for the decoder
(``propose``), with no prompt from the user or to improve the user's first click or box. No
weights change. Sets are saved as safetensors files for one model (``store``); the volume
session proposes from its accepted slices or from a saved set (``volume_proposals``).

Modules (each imports torch; this package file does not):
  example_set   ExampleSet: embeddings (k, 256, 64, 64), masks in the model frame, fingerprint
  similarity    the 64 x 64 similarity maps (PerSAM's prototype map; foreground-background margin)
  proposal      prompts from the maps, one or two decoder passes, the confidence flag
  store         named, versioned safetensors files of example sets, refused for another model
  volume_proposals  propose on a volume session's other slices (undoable)
"""

__all__ = ["ExampleSet", "Proposal", "propose"]


def __getattr__(name: str):
    # lazily, so that importing the package (the app's and Slicer's menus do) never imports torch
    if name == "ExampleSet":
        from waveseg.examples.example_set import ExampleSet

        return ExampleSet
    if name in ("Proposal", "propose"):
        from waveseg.examples import proposal as module

        return getattr(module, name)
    raise AttributeError(name)
