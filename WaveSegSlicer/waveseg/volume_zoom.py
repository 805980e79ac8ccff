"""ROI zoom on one slice of a ``VolumeSession``: a small box is answered from a crop around it.

``Segmenter.predict`` and ``InteractiveSession`` zoom on a small box (``waveseg.prompting.roi``); a
volume session decoded every slice from its whole-slice embedding, so a small lesion walked
through a 3D box covered a few pixels of the 256 x 256 frame on every slice. Here a slice whose
box is small is encoded as a crop (2.5 x the box, ``choose_roi``) and decoded there; its logits are
resampled into the whole slice's frame (``crop_logits_to_frame``), so propagation, clicks and undo
keep working with whole-frame logits. Consecutive slices whose boxes stay inside one crop keep
that crop (``keep_or_move_roi``), and then the previous slice's own crop logits are the mask prompt
(``ZoomMemory``: nothing lost by resampling); after a move, the mask prompt is the previous mask,
cropped. All coordinates here are the slice's square pixels (``SlicePixels``).
"""

from __future__ import annotations

import numpy as np

from waveseg.prediction import Prediction
from waveseg.preprocess import ResizeGeometry
from waveseg.prompting.box_zoom import ZoomMemory, crop_logits_to_frame
from waveseg.prompting.roi import next_roi


def zoomed_slice_prediction(segmenter, image: np.ndarray, window: tuple[float, float] | None, memory: ZoomMemory,
                            mode: str | bool, points: np.ndarray | None, labels: np.ndarray | None, box: np.ndarray,
                            mask_input: np.ndarray | None) -> Prediction | None:
    """The slice's prediction from a crop around ``box``, or None when the box is too large to zoom on.

    Arguments:
      segmenter: a ``Segmenter`` (``encode``, ``predict_encoded``).
      image: (Hs, Ws) slice in square pixels; window: the session's intensity window.
      memory: the session's record of which whole-frame logits came from which crop.
      mode: ``roi_zoom`` ("auto", True or False).
      points: (N, 2) (x, y) and labels (N,), or None; box: (4,) (x0, y0, x1, y1); all square pixels.
      mask_input: (1, 256, 256) whole-frame logits of an earlier prediction, an (Hs, Ws) bool mask, or None.
    Returns:
      ``Prediction`` whose ``mask`` is (Hs, Ws) bool (empty outside the crop) and ``logits``
      (1, 256, 256) are in the whole slice's frame.
    """
    hw = image.shape[:2]
    earlier = memory.recall(mask_input) if mask_input is not None and mask_input.dtype != bool else None
    roi = next_roi(earlier.roi if earlier else None, np.asarray(box, np.float64), None, points, hw, mode)
    if roi is None:
        return None
    x0, y0, x1, y1 = roi
    frame = ResizeGeometry.for_shape(*hw)
    if earlier is not None and earlier.roi == roi:
        crop_mask_input = earlier.crop_logits
    elif mask_input is not None:
        whole = mask_input if mask_input.dtype == bool else _logits_mask(mask_input, frame)
        crop_mask_input = whole[y0:y1, x0:x1].copy() if whole[y0:y1, x0:x1].any() else None
    else:
        crop_mask_input = None
    crop = segmenter.encode(image[y0:y1, x0:x1], window)
    out = segmenter.predict_encoded(crop, points=None if points is None else points - [x0, y0], labels=labels,
                                    box=np.asarray(box, np.float32) - [x0, y0, x0, y0], mask_input=crop_mask_input)
    mask = np.zeros(hw, bool)
    mask[y0:y1, x0:x1] = out.mask
    logits = crop_logits_to_frame(out.logits, crop.geometry, roi, frame)
    memory.remember(logits, roi, out.logits)
    return Prediction(mask=mask, score=out.score, logits=logits, masks=mask[None], scores=np.array([out.score], np.float32))


def _logits_mask(logits: np.ndarray, geometry: ResizeGeometry) -> np.ndarray:
    """(1, 256, 256) whole-frame logits -> the (H, W) bool mask they show (as ``Segmenter`` thresholds them)."""
    import torch

    from waveseg.predictor import logits_to_masks

    return logits_to_masks(torch.from_numpy(np.asarray(logits, np.float32).reshape(1, 256, 256)), geometry)[0]
