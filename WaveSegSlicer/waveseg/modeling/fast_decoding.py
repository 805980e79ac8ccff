"""SAM's prompt encoder + mask decoder, computed faster for interactive use on a CPU.

``FastMaskDecoding`` gives the same numbers as ``PromptableSegmenter.decode`` (to float32
rounding) for one image, with five changes in how they are computed. segment-anything's
``MaskDecoder`` has no hook for any of them, so the forward pass is written out here, calling
the library's own sub-modules and weights:

1. The prompt-independent part of the first transformer layer can be computed once per image
   (``image_terms``): the first layer's key and value projections of the image tokens and its
   image-to-token query projection. The mask prompt enters those projections linearly through
   the last 1x1 convolution of ``mask_downscaling``, so its share is projected from 16 channels
   instead of 256 (``W (Wc h + bc) = (W Wc) h + W bc``). They cost more than one decode's
   re-associated first layer (point 4), so they pay off from an image's second decode on;
   ``decode(..., layer0_terms=None)`` is the form for an image decoded once (propagation).
2. The output upscaling (two 2x2 stride-2 transposed convolutions, LayerNorm2d, GELU) runs as
   plain matrix products in a "sub-pixel" token layout: a 2x2 stride-2 transposed convolution
   is one matrix product per input pixel, and LayerNorm2d and GELU act per pixel, so the
   pixels are rearranged into the 256 x 256 frame only once, for the 1 to 3 output masks,
   instead of for 256 and 64 feature channels.
3. Only the requested mask tokens are upscaled (token 0 for a single mask, 1-3 for multimask).
4. Every other projection of the 4096 image tokens (later layers, the final attention) is
   re-associated onto the side of the few prompt tokens, where 8 heads x 7 tokens < 128
   channels make it cheaper (``_tokens_attend_image``, ``_image_attend_tokens``). With many
   clicks (8 heads x T tokens > 128 channels: from 11 clicks, or 10 with a box) that side is the
   larger one; ``FastMaskDecoding(project_image=True)`` then projects the image tokens as
   segment-anything does, and ``PromptDecoder`` picks the cheaper form by the click count.
5. The final token-to-image attention is computed only for the tokens read after it (the IoU
   token and the requested mask tokens, 2 to 4 of them): each token attends to the image
   independently, and the point tokens' outputs are discarded. With so few tokens it is always
   re-associated (point 4), whatever the click count.

Prompts use the convention of segment-anything's ONNX export: one list of points in the
256 x 256 model frame with labels 1 (foreground), 0 (background), 2 and 3 (box corners) and
-1 (padding, required when there is no box).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from segment_anything.utils.onnx import SamOnnxModel
from torch import Tensor, nn

from waveseg.preprocess import MODEL_INPUT_SIZE

SINGLE_MASK_TOKENS = (0,)
MULTI_MASK_TOKENS = (1, 2, 3)


def image_tokens(embedding: Tensor) -> Tensor:
    """(1, 256, 64, 64) embedding -> (4096, 256) image tokens in row-major (y, x) order."""
    return embedding[0].flatten(1).transpose(0, 1)


def _heads(x: Tensor, num_heads: int) -> Tensor:
    """(T, C) -> (heads, T, C / heads)."""
    return x.reshape(x.shape[0], num_heads, -1).transpose(0, 1)


def _tokens_attend(attention: nn.Module, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """segment-anything ``Attention.forward`` for the few prompt tokens attending to image
    tokens whose keys k and values v (4096, C_internal) are already projected."""
    n = attention.num_heads
    qh, kh, vh = _heads(attention.q_proj(q), n), _heads(k, n), _heads(v, n)
    weights = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(qh.shape[-1]), dim=-1)
    return attention.out_proj((weights @ vh).transpose(0, 1).reshape(q.shape[0], -1))


def _tokens_attend_image(attention: nn.Module, q: Tensor, image_k: Tensor, image_v: Tensor) -> Tensor:
    """``Attention.forward(q, image_k, image_v)`` for T prompt tokens q (T, 256) and unprojected
    image tokens (4096, 256). With T x heads (about 56) < C_internal (128), projecting the few
    queries into the image's 256 channels is cheaper than projecting 4096 image tokens:
    (q_h)(X W_kh^T + b_kh)^T = (q_h W_kh) X^T + q_h b_kh, and w_h (X W_vh^T + b_vh) = (w_h X) W_vh^T
    + b_vh because the attention weights w_h sum to 1."""
    n = attention.num_heads
    qh = _heads(attention.q_proj(q), n)  # (n, T, d)
    tokens, d = qh.shape[1], qh.shape[2]
    wk = attention.k_proj.weight.reshape(n, d, -1)  # (n, d, 256)
    bk = attention.k_proj.bias.reshape(n, d, 1)
    scores = (qh @ wk).reshape(n * tokens, -1) @ image_k.T  # (n T, 4096)
    scores = scores.reshape(n, tokens, -1) + qh @ bk
    weights = torch.softmax(scores / math.sqrt(d), dim=-1)
    mixed = (weights.reshape(n * tokens, -1) @ image_v).reshape(n, tokens, -1)  # (n, T, 256)
    wv = attention.v_proj.weight.reshape(n, d, -1)
    out = mixed @ wv.transpose(1, 2) + attention.v_proj.bias.reshape(n, 1, d)  # (n, T, d)
    return attention.out_proj(out.transpose(0, 1).reshape(tokens, n * d))


def _image_attend_tokens_projected(attention: nn.Module, k: Tensor, v: Tensor, projected_q: Tensor) -> Tensor:
    """segment-anything ``Attention.forward`` for 4096 image tokens whose queries (4096, C_internal)
    are already projected, attending to T prompt tokens k, v (T, 256): the form for many tokens."""
    n = attention.num_heads
    qh, kh, vh = _heads(projected_q, n), _heads(attention.k_proj(k), n), _heads(attention.v_proj(v), n)
    weights = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(qh.shape[-1]), dim=-1)  # (n, 4096, T)
    return attention.out_proj((weights @ vh).transpose(0, 1).reshape(projected_q.shape[0], -1))


def _image_attend_tokens(attention: nn.Module, k: Tensor, v: Tensor, image_q: Tensor | None = None,
                         projected_q: Tensor | None = None) -> Tensor:
    """``Attention.forward(image_q, k, v)`` for 4096 image tokens attending to T prompt tokens
    k, v (T, 256), from unprojected image_q (4096, 256) or its projection (4096, C_internal).
    As in ``_tokens_attend_image``, the projections are moved to the T-token side:
    (X W_qh^T + b_qh) k_h^T = X (W_qh^T k_h^T) + b_qh k_h^T, and the output projection
    sum_h w_h (v_h W_oh^T) needs one (4096, heads T) x (heads T, 256) product."""
    n = attention.num_heads
    kh, vh = _heads(attention.k_proj(k), n), _heads(attention.v_proj(v), n)  # (n, T, d)
    tokens, d = kh.shape[1], kh.shape[2]
    if projected_q is None:
        wq = attention.q_proj.weight.reshape(n, d, -1)  # (n, d, 256)
        mix = (wq.transpose(1, 2) @ kh.transpose(1, 2)).permute(1, 0, 2).reshape(-1, n * tokens)  # (256, n T)
        offset = (attention.q_proj.bias.reshape(n, 1, d) @ kh.transpose(1, 2)).reshape(n * tokens)
        scores = image_q @ mix + offset
    else:
        scores = (_heads(projected_q, n) @ kh.transpose(1, 2)).transpose(0, 1)  # (4096, n, T)
    weights = torch.softmax(scores.reshape(-1, n, tokens) / math.sqrt(d), dim=-1)
    wo = attention.out_proj.weight.reshape(-1, n, d).permute(1, 2, 0)  # (n, d, 256)
    per_token = (vh @ wo).reshape(n * tokens, -1)  # (n T, 256)
    return weights.reshape(-1, n * tokens) @ per_token + attention.out_proj.bias


class FastMaskDecoding(nn.Module):
    """Decode one image's prompts with ``model``'s prompt encoder and mask decoder.

    ``image_terms(embedding)`` once per image, then ``forward`` once per prompt set.
    """

    def __init__(self, model: nn.Module, mask_tokens: tuple[int, ...] = SINGLE_MASK_TOKENS,
                 project_image: bool = False) -> None:
        super().__init__()
        self.model = model  # a PromptableSegmenter (its image encoder is not used)
        self.mask_tokens = mask_tokens
        self.project_image = project_image  # project the image tokens, not the prompt tokens (module doc, point 4)
        self.img_size = MODEL_INPUT_SIZE  # read by SamOnnxModel._embed_points

    @staticmethod
    def prefers_projected_image(model: nn.Module, num_points: int) -> bool:
        """Whether ``project_image=True`` is the cheaper form for ``num_points`` point tokens
        (clicks, box corners, padding): heads x tokens above the attention's internal channels."""
        attention = model.mask_decoder.transformer.final_attn_token_to_image
        tokens = 1 + model.mask_decoder.num_mask_tokens + num_points  # IoU token, mask tokens, points
        return attention.num_heads * tokens > attention.internal_dim

    def _layer0(self):
        return self.model.mask_decoder.transformer.layers[0]

    def image_terms(self, embedding: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(1, 256, 64, 64) embedding -> image tokens (4096, 256) and the first layer's
        prompt-independent projections k0, v0, q0 (4096, 128); tokens in row-major (y, x) order."""
        tokens = image_tokens(embedding)
        with_pe = tokens + self._image_pe()
        layer = self._layer0()
        t2i, i2t = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token
        return tokens.contiguous(), t2i.k_proj(with_pe), t2i.v_proj(tokens), i2t.q_proj(with_pe)

    def _image_pe(self) -> Tensor:
        return self.model.prompt_encoder.get_dense_pe()[0].flatten(1).transpose(0, 1)

    def forward(self, image_tokens: Tensor, k0: Tensor, v0: Tensor, q0: Tensor, point_coords: Tensor,
                point_labels: Tensor, mask_input: Tensor, has_mask_input: Tensor) -> tuple[Tensor, Tensor]:
        """``decode`` with the ``image_terms`` outputs (image_tokens, k0, v0, q0)."""
        return self.decode(image_tokens, (k0, v0, q0), point_coords, point_labels, mask_input, has_mask_input)

    def decode(self, image_tokens: Tensor, layer0_terms: tuple[Tensor, Tensor, Tensor] | None, point_coords: Tensor,
               point_labels: Tensor, mask_input: Tensor, has_mask_input: Tensor) -> tuple[Tensor, Tensor]:
        """Arguments: image_tokens (4096, 256) as from ``image_terms``; layer0_terms its k0, v0, q0,
        or None to compute the first layer like the others (cheaper for a single decode);
        point_coords (1, N, 2) float (x, y) in the model frame; point_labels (1, N) float (see
        module doc); mask_input (1, 1, 256, 256) logits; has_mask_input (1,) 1.0 or 0.0.
        Returns (1, M, 256, 256) mask logits and (1, M) predicted IoU, M = len(mask_tokens)."""
        prompts = self.model.prompt_encoder
        decoder = self.model.mask_decoder
        transformer = decoder.transformer
        sparse = SamOnnxModel._embed_points(self, point_coords, point_labels)[0]  # (N, 256)
        queries = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight, sparse], dim=0)
        query_pe = queries

        # Dense (mask) prompt: last 1x1 conv of mask_downscaling kept apart (module doc, point 1).
        hidden = prompts.mask_downscaling[:-1](mask_input)[0].flatten(1).transpose(0, 1)  # (4096, 16)
        last = prompts.mask_downscaling[-1]
        conv_w, conv_b = last.weight[:, :, 0, 0], last.bias  # (256, 16), (256,)
        no_mask = prompts.no_mask_embed.weight[0]  # (256,)
        has = has_mask_input.reshape(1, 1)

        def dense_through(weight: Tensor) -> Tensor:
            """``dense @ weight.T`` without the 256-channel dense tensor."""
            return has * (hidden @ (weight @ conv_w).T + weight @ conv_b) + (1 - has) * (weight @ no_mask)

        keys = image_tokens + has * (hidden @ conv_w.T + conv_b) + (1 - has) * no_mask
        key_pe = self._image_pe()
        for index, layer in enumerate(transformer.layers):
            t2i, i2t, sa = layer.cross_attn_token_to_image, layer.cross_attn_image_to_token, layer.self_attn
            if layer.skip_first_layer_pe:
                queries = _tokens_attend(sa, queries, sa.k_proj(queries), sa.v_proj(queries))
            else:
                q = queries + query_pe
                queries = queries + _tokens_attend(sa, q, sa.k_proj(q), sa.v_proj(queries))
            queries = layer.norm1(queries)
            if index == 0 and layer0_terms is not None:  # image projections precomputed (module doc, point 1)
                k0, v0, q0 = layer0_terms
                k, v = k0 + dense_through(t2i.k_proj.weight), v0 + dense_through(t2i.v_proj.weight)
                queries = layer.norm2(queries + _tokens_attend(t2i, queries + query_pe, k, v))
            else:
                queries = layer.norm2(queries + self._tokens_attend_image(t2i, queries + query_pe, keys + key_pe, keys))
            queries = layer.norm3(queries + layer.mlp(queries))
            q = queries + query_pe
            if index == 0 and layer0_terms is not None:
                attended = self._image_attend_tokens(i2t, q, queries, projected_q=q0 + dense_through(i2t.q_proj.weight))
            else:
                attended = self._image_attend_tokens(i2t, q, queries, image_q=keys + key_pe)
            keys = layer.norm4(keys + attended)
        # the final attention only for the tokens read after it (module doc, point 5)
        read = [0, *(1 + i for i in self.mask_tokens)]  # the IoU token and the requested mask tokens
        final = transformer.final_attn_token_to_image
        queries = transformer.norm_final_attn(
            queries[read] + _tokens_attend_image(final, (queries + query_pe)[read], keys + key_pe, keys))

        hyper = torch.stack([decoder.output_hypernetworks_mlps[i](queries[1 + j])
                             for j, i in enumerate(self.mask_tokens)])  # (M, 32)
        masks = self._upscaled_masks(keys, hyper)
        iou = decoder.iou_prediction_head(queries[0])[list(self.mask_tokens)]
        return masks[None], iou[None]

    def _tokens_attend_image(self, attention: nn.Module, q: Tensor, image_k: Tensor, image_v: Tensor) -> Tensor:
        if self.project_image:
            return _tokens_attend(attention, q, attention.k_proj(image_k), attention.v_proj(image_v))
        return _tokens_attend_image(attention, q, image_k, image_v)

    def _image_attend_tokens(self, attention: nn.Module, k: Tensor, v: Tensor, image_q: Tensor | None = None,
                             projected_q: Tensor | None = None) -> Tensor:
        if not self.project_image:
            return _image_attend_tokens(attention, k, v, image_q, projected_q)
        projected = attention.q_proj(image_q) if projected_q is None else projected_q
        return _image_attend_tokens_projected(attention, k, v, projected)

    def _upscaled_masks(self, keys: Tensor, hyper: Tensor) -> Tensor:
        """(4096, 256) image tokens, (M, 32) hypernetwork outputs -> (M, 256, 256) logits
        (module doc, point 2)."""
        up1, norm, act1, up2, act2 = self.model.mask_decoder.output_upscaling
        c1, c2 = up1.weight.shape[1], up2.weight.shape[1]
        side = int(math.isqrt(keys.shape[0]))
        # ConvTranspose2d weight (C_in, C_out, 2, 2) -> (C_in, 2 * 2 * C_out), columns (ky, kx, c)
        w1 = up1.weight.permute(0, 2, 3, 1).reshape(up1.weight.shape[0], 4 * c1)
        x = (keys @ w1).reshape(-1, c1) + up1.bias  # rows (y, x, ky1, kx1)
        x = act1(F.layer_norm(x, (c1,), norm.weight, norm.bias, norm.eps))
        w2 = up2.weight.permute(0, 2, 3, 1).reshape(c1, 4 * c2)
        x = act2((x @ w2).reshape(-1, c2) + up2.bias)  # rows (y, x, ky1, kx1, ky2, kx2)
        masks = (x @ hyper.T).reshape(side, side, 2, 2, 2, 2, hyper.shape[0])
        # output row = 4 y + 2 ky1 + ky2, column = 4 x + 2 kx1 + kx2
        return masks.permute(6, 0, 2, 4, 1, 3, 5).reshape(hyper.shape[0], 4 * side, 4 * side)
