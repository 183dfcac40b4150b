"""Automatic masks: sam2's SAM2AutomaticMaskGenerator, same settings and output records, several times faster on CPU.

Where sam2's generator spends its time on a CPU, and what this one does instead:
- the decoder copies the image embedding once per grid point and runs every projection of its two-way transformer
  on all 4096 image positions of every copy. `PointDecoder` keeps ONE copy: the image-side work of the first layer
  (which does not depend on the prompt yet) runs once per image, and the later attention projections are folded
  into the prompt's 8 tokens instead of the 4096 positions (same values, about a third of the transformer's FLOPs);
- the mask head (two transposed convolutions at 128² and 256² per point) runs in channels-last, and only for
  points with a mask above `pred_iou_thresh`, which needs the transformer alone;
- every mask is upsampled to the image, scored and RLE-encoded before duplicates are removed. Here the stability
  score and the boxes for NMS come from the 256² low-res logits; only the survivors of NMS are decoded again,
  upsampled and encoded. Masks and scores match sam2's within the tolerance that bench/bench_amg.py reports.
`use_m2m` (mask-to-mask refinement) falls back to sam2's own path.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.utils.amg import (MaskData, batch_iterator, batched_mask_to_box, calculate_stability_score,
                            generate_crop_boxes, is_box_near_crop_edge, mask_to_rle_pytorch, uncrop_boxes_xyxy,
                            uncrop_masks, uncrop_points)
from torchvision.ops.boxes import batched_nms

Progress = Callable[[int, int], None]  # (points decoded so far, points to decode in all)


def _heads(attn: torch.nn.Module) -> tuple[int, int]:
    return attn.num_heads, attn.internal_dim // attn.num_heads


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """B x N x (H d) -> B x H x N x d, as sam2's Attention._separate_heads."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _tokens_to_image(attn: torch.nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sam2's Attention(q, k, v) for P x T prompt tokens attending to their own P x N image positions.

    The key and value projections act on the token side (q·Wk, then Wv after the attention-weighted sum of the
    image) instead of on N >> T positions; the key bias drops out of the softmax and the value bias passes through
    because attention weights sum to one.
    """
    P, T, C = q.shape
    H, d = _heads(attn)
    qk = torch.einsum("pthj,hjc->phtc", attn.q_proj(q).view(P, T, H, d), attn.k_proj.weight.view(H, d, C))
    weights = torch.softmax(qk.reshape(P, H * T, C) @ k.transpose(1, 2) * d ** -0.5, dim=-1)
    context = (weights @ v).view(P, H, T, C)
    out = torch.einsum("phtc,hjc->pthj", context, attn.v_proj.weight.view(H, d, C)).reshape(P, T, H * d)
    return attn.out_proj(out + attn.v_proj.bias)


def _image_to_tokens(attn: torch.nn.Module, q: torch.Tensor | None, k: torch.Tensor, v: torch.Tensor,
                     shared_q: torch.Tensor | None = None) -> torch.Tensor:
    """sam2's Attention(q, k, v) for P x N image positions attending to their prompt's P x T tokens.

    The query projection is folded into the tokens' keys (or `shared_q`, the projected queries of one image, is
    used for every prompt) and the output projection into the tokens' values: nothing is projected per position.
    Scores are laid out P x H x T x N so the softmax over the T tokens runs along a long contiguous axis.
    """
    P, T, C = k.shape
    H, d = _heads(attn)
    keys = attn.k_proj(k).view(P, T, H, d)
    if shared_q is not None:
        scores = torch.einsum("pthj,hnj->phtn", keys, shared_q)
    else:
        folded = torch.einsum("pthj,hjc->phtc", keys, attn.q_proj.weight.view(H, d, C)).reshape(P, H * T, C)
        bias = torch.einsum("pthj,hj->pht", keys, attn.q_proj.bias.view(H, d)).reshape(P, H * T, 1)
        scores = torch.baddbmm(bias, folded, q.transpose(1, 2)).view(P, H, T, -1)
    weights = torch.softmax(scores * d ** -0.5, dim=2).flatten(1, 2)
    values = torch.einsum("pthj,chj->phtc", attn.v_proj(v).view(P, T, H, d), attn.out_proj.weight.view(C, H, d))
    return torch.baddbmm(attn.out_proj.bias, weights.transpose(1, 2), values.reshape(P, H * T, C))


class PointDecoder:
    """sam2's prompt encoder + mask decoder for many point prompts on ONE image, without a copy of the image per
    prompt. The first transformer layer's image projections do not depend on the prompt: they run once here.

    image_embed 1 x C x h x w and high_res as SAM2ImagePredictor holds them (`_features`, batch 1).
    """

    def __init__(self, model: torch.nn.Module, image_embed: torch.Tensor, high_res: list[torch.Tensor]):
        self.model, self.decoder = model, model.sam_mask_decoder
        _, dense = model.sam_prompt_encoder(points=None, boxes=None, masks=None)  # "no mask" embedding, 1 x C x h x w
        src = image_embed + dense
        self.shape = src.shape[1:]
        self.keys = src.flatten(2).transpose(1, 2)  # 1 x N x C
        self.pe = model.sam_prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2)
        first = self.decoder.transformer.layers[0]
        keys_pe = self.keys + self.pe
        t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
        self.t2i_k = _split_heads(t2i.k_proj(keys_pe), t2i.num_heads)
        self.t2i_v = _split_heads(t2i.v_proj(self.keys), t2i.num_heads)
        self.i2t_q = _split_heads(i2t.q_proj(keys_pe), i2t.num_heads)[0]
        self.high_res = [f.contiguous(memory_format=torch.channels_last) for f in high_res]  # the layout of src below

    def _first_layer(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sam2's first TwoWayAttentionBlock (skip_first_layer_pe) with the image-side projections precomputed."""
        layer = self.decoder.transformer.layers[0]
        queries = layer.norm1(layer.self_attn(q=tokens, k=tokens, v=tokens))
        t2i = layer.cross_attn_token_to_image
        P, T, _ = queries.shape
        q = _split_heads(t2i.q_proj(queries + tokens).reshape(1, P * T, -1), t2i.num_heads)
        out = F.scaled_dot_product_attention(q, self.t2i_k, self.t2i_v).transpose(1, 2).reshape(P, T, -1)
        queries = layer.norm2(queries + t2i.out_proj(out))
        queries = layer.norm3(queries + layer.mlp(queries))
        out = _image_to_tokens(layer.cross_attn_image_to_token, None, queries + tokens, queries, shared_q=self.i2t_q)
        return queries, layer.norm4(self.keys + out)

    def _transformer(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sam2's TwoWayTransformer.forward: (tokens out P x T x C, image out P x N x C)."""
        transformer = self.decoder.transformer
        queries, keys = self._first_layer(tokens)
        for layer in transformer.layers[1:]:
            q = queries + tokens
            queries = layer.norm1(queries + layer.self_attn(q=q, k=q, v=queries))
            keys_pe = keys + self.pe
            queries = layer.norm2(queries + _tokens_to_image(layer.cross_attn_token_to_image, queries + tokens,
                                                             keys_pe, keys))
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = layer.norm4(keys + _image_to_tokens(layer.cross_attn_image_to_token, keys_pe, queries + tokens,
                                                       queries))
        out = _tokens_to_image(transformer.final_attn_token_to_image, queries + tokens, keys + self.pe, keys)
        return transformer.norm_final_attn(queries + out), keys

    def __call__(self, coords: torch.Tensor, labels: torch.Tensor, multimask: bool = True,
                 min_iou: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """coords P x n x 2 in model-input pixels, labels P x n -> (low-res logits P' x M x 4h x 4w, predicted IoU
        P x M, rows): the mask head runs only for the P' prompts (`rows`) with a predicted IoU above `min_iou`
        (all when None). M is 3 with `multimask`, else 1 (sam2's multimask_output, without its dynamic fallback)."""
        decoder = self.decoder
        sparse, _ = self.model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        first = int(decoder.pred_obj_scores)  # token 0 is the object-score token when the model has one
        own = [decoder.obj_score_token.weight] if first else []
        output_tokens = torch.cat([*own, decoder.iou_token.weight, decoder.mask_tokens.weight])
        tokens = torch.cat([output_tokens.expand(len(sparse), -1, -1), sparse], dim=1)
        queries, keys = self._transformer(tokens)

        chosen = slice(1, decoder.num_mask_tokens) if multimask else slice(0, 1)
        iou = decoder.iou_prediction_head(queries[:, first])[:, chosen]
        rows = torch.arange(len(queries), device=queries.device)
        if min_iou is not None:
            rows = rows[(iou > min_iou).any(1)]
            keys = keys[rows]
        tokens_out = queries[rows, first + 1:first + 1 + decoder.num_mask_tokens][:, chosen]
        hyper = torch.stack([mlp(tokens_out[:, i]) for i, mlp in
                             enumerate(decoder.output_hypernetworks_mlps[chosen])], dim=1)
        src = keys.transpose(1, 2).unflatten(2, self.shape[1:])  # channels-last view, P' x C x h x w
        return self._mask_head(src, hyper), iou, rows

    def _mask_head(self, src: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """The end of sam2's MaskDecoder.predict_masks: upscaling with the high-res features, then the
        hypernetworks, in channels-last; sam2's LayerNorm2d runs as one layer_norm over that layout's channels."""
        decoder = self.decoder
        if not decoder.use_high_res_features:
            upscaled = decoder.output_upscaling(src)
        else:
            dc1, ln1, act1, dc2, act2 = decoder.output_upscaling
            feat_s0, feat_s1 = self.high_res
            x = (dc1(src) + feat_s1).permute(0, 2, 3, 1)
            x = act1(F.layer_norm(x, x.shape[-1:], ln1.weight, ln1.bias, ln1.eps)).permute(0, 3, 1, 2)
            upscaled = act2(dc2(x) + feat_s0)
        b, c, h, w = upscaled.shape
        pixels = upscaled.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view when channels-last
        return (pixels @ hyper.transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)


class FastMaskGenerator(SAM2AutomaticMaskGenerator):
    """SAM2AutomaticMaskGenerator with the same arguments and output; `progress(done, total)` is called as grid
    points are decoded (for progress bars)."""

    def __init__(self, model: torch.nn.Module, points_per_batch: int = 16, progress: Progress | None = None,
                 **kwargs: Any):
        super().__init__(model, points_per_batch=points_per_batch, **kwargs)
        self.progress = progress
        self._done = self._total = 0
        self._decoder: PointDecoder | None = None

    @torch.no_grad()
    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        _, layers = generate_crop_boxes(image.shape[:2], self.crop_n_layers, self.crop_overlap_ratio)
        self._done, self._total = 0, sum(len(self.point_grids[layer]) for layer in layers)
        return super().generate(image)

    def _advance(self, points: int, more: int = 0) -> None:
        self._done, self._total = self._done + points, self._total + more
        if self.progress is not None:
            self.progress(self._done, self._total)

    def _decode(self, points: np.ndarray | torch.Tensor, size: tuple[int, int],
                min_iou: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(points, low-res logits, predicted IoU, rows) for grid points in crop pixels, on the predictor's image."""
        points = torch.as_tensor(points, dtype=torch.float32, device=self.predictor.device)
        coords = self.predictor._transforms.transform_coords(points, normalize=True, orig_hw=size)
        labels = torch.ones(len(coords), 1, dtype=torch.int, device=coords.device)
        return points, *self._decoder(coords[:, None], labels, self.multimask_output, min_iou)

    def _process_crop(self, image: np.ndarray, crop_box: list[int], crop_layer_idx: int,
                      orig_size: tuple[int, ...]) -> MaskData:
        if self.use_m2m:
            return super()._process_crop(image, crop_box, crop_layer_idx, orig_size)
        x0, y0, x1, y1 = crop_box
        size = (y1 - y0, x1 - x0)
        self.predictor.set_image(image[y0:y1, x0:x1, :])
        features = self.predictor._features
        self._decoder = PointDecoder(self.predictor.model, features["image_embed"][-1:],
                                     [f[-1:] for f in features["high_res_feats"]])
        grid = self.point_grids[crop_layer_idx] * np.array(size)[None, ::-1]

        # 1. every grid point: filters and boxes on the low-res logits, then NMS (as sam2 does within a crop)
        data = MaskData()
        for (points,) in batch_iterator(self.points_per_batch, grid):
            data.cat(self._candidates(points, size, crop_box, orig_size))
            self._advance(len(points))
        keep = batched_nms(data["boxes"].float(), data["iou_preds"], torch.zeros_like(data["boxes"][:, 0]),
                           iou_threshold=self.box_nms_thresh)
        data.filter(keep)

        # 2. the survivors only: decode their points again, upsample to the crop, exact boxes, RLE
        masks = self._survivor_masks(data, size)
        self.predictor.reset_predictor()
        self._decoder = None
        data["boxes"] = uncrop_boxes_xyxy(batched_mask_to_box(masks), crop_box)
        data["rles"] = mask_to_rle_pytorch(uncrop_masks(masks, crop_box, orig_size[0], orig_size[1]))
        data["points"] = uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = torch.tensor([crop_box for _ in range(len(data["rles"]))])
        del data["mask_index"]
        return data

    def _survivor_masks(self, data: MaskData, size: tuple[int, int]) -> torch.Tensor:
        """Masks (K x H x W bool, at the crop's resolution) of the K candidates left in `data`."""
        if len(data["points"]) == 0:
            return torch.zeros(0, *size, dtype=torch.bool)
        points, inverse = torch.unique(data["points"], dim=0, return_inverse=True)
        self._advance(0, more=len(points))
        logits = []
        for (batch,) in batch_iterator(self.points_per_batch, points):
            logits.append(self._decode(batch, size, None)[1])
            self._advance(len(batch))
        low_res = torch.cat(logits)[inverse, data["mask_index"]]
        return self.predictor._transforms.postprocess_masks(low_res[:, None], size)[:, 0] > self.mask_threshold

    def _candidates(self, points: np.ndarray, size: tuple[int, int], crop_box: list[int],
                    orig_size: tuple[int, ...]) -> MaskData:
        """sam2's _process_batch up to the boxes, on the low-res logits; no mask is upsampled here."""
        min_iou = self.pred_iou_thresh if self.pred_iou_thresh > 0.0 else None
        points, low_res, iou, rows = self._decode(points, size, min_iou)
        m = low_res.shape[1]
        data = MaskData(iou_preds=iou[rows].flatten(), points=points[rows].repeat_interleave(m, dim=0),
                        mask_index=torch.arange(m).repeat(len(rows)), low_res=low_res.flatten(0, 1))
        if min_iou is not None:
            data.filter(data["iou_preds"] > min_iou)
        data["stability_score"] = calculate_stability_score(data["low_res"], self.mask_threshold,
                                                            self.stability_score_offset)
        if self.stability_score_thresh > 0.0:
            data.filter(data["stability_score"] >= self.stability_score_thresh)
        data["boxes"] = _scaled_boxes(data["low_res"] > self.mask_threshold, size)
        del data["low_res"]
        keep = ~is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_size[1], orig_size[0]])
        if not torch.all(keep):
            data.filter(keep)
        return data


def _scaled_boxes(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """XYXY boxes of low-res masks in the pixels of an image of `size` (inclusive edges, as batched_mask_to_box);
    [0, 0, 0, 0] for an empty mask."""
    h, w = size
    sy, sx = h / masks.shape[-2], w / masks.shape[-1]
    boxes = batched_mask_to_box(masks).float()
    scaled = boxes * torch.tensor([sx, sy, sx, sy]) + torch.tensor([0.0, 0.0, sx - 1, sy - 1])
    return torch.where(masks.flatten(1).any(1)[:, None], scaled, torch.zeros_like(scaled))
