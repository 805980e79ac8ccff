"""Prompt handling: from what a user (or a simulated user) gives to what the decoder sees.

- ``validation``: points, labels and boxes in image pixels, checked and tidied.
- ``strokes``, ``stroke_prompts``: scribbles and lassos, and how they reach the decoder.
- ``click_pinning``: clicks that a fed-back mask prompt contradicts are written into it.
- ``mask_prompt``: a mask given as a prompt gets the edge profile of the model's own logits.
- ``roi``, ``box_zoom``: a small box is answered from an encoded crop around it, its logits kept
  in the whole image's frame.
- ``simulation``, ``stroke_simulation``: simulated clicks, boxes, scribbles and lassos for
  training, evaluation and adaptation.

Everything here works on numpy arrays, in (x, y) pixel order for points and (H, W) for masks.
"""
