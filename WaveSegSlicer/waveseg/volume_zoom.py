"""ROI zoom on one slice of a ``VolumeSession``: a small box the user draws is answered from a crop.

``Segmenter.predict`` and ``InteractiveSession`` zoom on a small box (``waveseg.prompting.roi``); a
volume session decoded every slice from its whole-slice embedding, so a small lesion covered a few
pixels of the 256 x 256 frame on the slice the user boxed. Here that slice is encoded as a crop
(2.5 x the box, ``choose_roi``) and decoded there; its logits are resampled into the whole slice's
frame (``crop_logits_to_frame``), so propagation, clicks and undo keep working with whole-frame
logits. Only the prompted slice (a small box, or a slice's first positive scribbles,
``waveseg.volume_strokes``): propagated slices are decoded from their whole-slice embeddings
(measured in ``VolumeSession.__init__``'s comment). All coordinates here are the slice's square
pixels (``SlicePixels``)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from waveseg.prediction import Prediction
from waveseg.preprocess import ResizeGeometry
from waveseg.prompting.box_zoom import crop_logits_to_frame
from waveseg.prompting.roi import choose_roi, target_extent
from waveseg.prompting.strokes import Stroke


def zoomed_slice_prediction(segmenter, image: np.ndarray, window: tuple[float, float] | None, mode: str | bool,
                            extent: np.ndarray, points: np.ndarray | None = None, labels: np.ndarray | None = None,
                            box: np.ndarray | None = None, scribbles: Sequence[Stroke] = ()) -> Prediction | None:
    """The slice's prediction from a crop around ``extent`` (and the clicks), or None when the target
    is too large to zoom on.

    Arguments:
      segmenter: a ``Segmenter`` (``encode``, ``predict_encoded``).
      image: (Hs, Ws) slice in square pixels; window: the session's intensity window.
      mode: ``roi_zoom`` ("auto", True or False).
      extent: (4,) (x0, y0, x1, y1) of the target: the box, or a first scribble's grown extent.
      points: (N, 2) (x, y) and labels (N,), or None; box: (4,) or None; scribbles: ``Stroke``s;
        all in square pixels.
    Returns:
      ``Prediction`` whose ``mask`` is (Hs, Ws) bool (empty outside the crop) and ``logits``
      (1, 256, 256) are in the whole slice's frame.
    """
    hw = image.shape[:2]
    roi = choose_roi(target_extent(np.asarray(extent, np.float64), None, points), hw, mode)
    if roi is None:
        return None
    x0, y0, x1, y1 = roi
    crop = segmenter.encode(image[y0:y1, x0:x1], window)
    out = segmenter.predict_encoded(crop, points=None if points is None else points - [x0, y0], labels=labels,
                                    box=None if box is None else np.asarray(box, np.float32) - [x0, y0, x0, y0],
                                    scribbles=[s.shifted(x0, y0) for s in scribbles] or None)
    mask = np.zeros(hw, bool)
    mask[y0:y1, x0:x1] = out.mask
    logits = crop_logits_to_frame(out.logits, crop.geometry, roi, ResizeGeometry.for_shape(*hw))
    return Prediction(mask=mask, score=out.score, logits=logits, masks=mask[None], scores=np.array([out.score], np.float32))
