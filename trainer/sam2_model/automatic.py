"""Automatic masks: sam2's SAM2AutomaticMaskGenerator, same settings and output records, several times faster on CPU.

Where sam2's generator spends its time on a CPU, and what this one does instead:
- the decoder copies the image embedding once per grid point and runs every projection of its two-way transformer
  on all 4096 image positions of every copy: `PointDecoder` (point_decoder.py) does neither;
- the mask head (two transposed convolutions at 128² and 256² per point) runs in channels-last, and only for
  points with a mask above `pred_iou_thresh`, which needs the transformer alone;
- every mask is upsampled to the image, scored and RLE-encoded before duplicates are removed. Here the stability
  score and the boxes for NMS come from the 256² low-res logits; only the survivors of NMS are decoded again,
  upsampled and encoded. Masks and scores match sam2's within the tolerance that bench/bench_amg.py reports.
`use_m2m` (mask-to-mask refinement) falls back to sam2's own path.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2.utils.amg import (MaskData, batch_iterator, batched_mask_to_box, calculate_stability_score,
                            generate_crop_boxes, is_box_near_crop_edge, mask_to_rle_pytorch, uncrop_boxes_xyxy,
                            uncrop_masks, uncrop_points)
from torchvision.ops.boxes import batched_nms

from trainer.sam2_model.point_decoder import PointDecoder

Progress = Callable[[int, int], None]  # (points decoded so far, points to decode in all)
# Points per decoder call on a CPU, whatever points_per_batch says: 4 kept the activations in cache (~10% faster
# than 16, ~20% than 64 on 2 cores); points_per_batch still sets the batches of filtering and progress.
CPU_POINTS_PER_CALL = 4
UPSAMPLED_PIXELS = 2**24  # survivor masks upsampled per chunk (64 MB of float logits at most)


class FastMaskGenerator(SAM2AutomaticMaskGenerator):
    """SAM2AutomaticMaskGenerator with the same arguments and output; `progress(done, total)` is called as grid
    points are decoded (for progress bars)."""

    def __init__(self, model: torch.nn.Module, points_per_batch: int = 64, progress: Progress | None = None,
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
        coords = self.predictor._transforms.transform_coords(points, normalize=True, orig_hw=size)[:, None]
        labels = torch.ones(len(coords), 1, dtype=torch.int, device=coords.device)
        step = CPU_POINTS_PER_CALL if points.device.type == "cpu" else len(points)
        parts = [self._decoder(coords[i:i + step], labels[i:i + step], self.multimask_output, min_iou)
                 for i in range(0, len(points), step)]
        rows = torch.cat([part[2] + i for i, part in zip(range(0, len(points), step), parts)])
        return points, torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), rows

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
        boxes, rles = [], []
        for masks in self._survivor_masks(data, size):
            boxes.append(uncrop_boxes_xyxy(batched_mask_to_box(masks), crop_box))
            rles.extend(mask_to_rle_pytorch(uncrop_masks(masks, crop_box, orig_size[0], orig_size[1])))
        self.predictor.reset_predictor()
        self._decoder = None
        data["boxes"], data["rles"] = torch.cat(boxes), rles
        data["points"] = uncrop_points(data["points"], crop_box)
        data["crop_boxes"] = torch.tensor([crop_box for _ in range(len(data["rles"]))])
        del data["mask_index"]
        return data

    def _survivor_masks(self, data: MaskData, size: tuple[int, int]) -> Iterator[torch.Tensor]:
        """Masks (K x H x W bool, at the crop's resolution) of the K candidates left in `data`, in order, a few at
        a time: upsampled all at once, 200 masks of a 2048² image are 3 GB of float logits."""
        if len(data["points"]) == 0:
            yield torch.zeros(0, *size, dtype=torch.bool)
            return
        points, inverse = torch.unique(data["points"], dim=0, return_inverse=True)
        self._advance(0, more=len(points))
        logits = []
        for (batch,) in batch_iterator(self.points_per_batch, points):
            logits.append(self._decode(batch, size, None)[1])
            self._advance(len(batch))
        low_res = torch.cat(logits)[inverse, data["mask_index"]]
        per_chunk = max(1, UPSAMPLED_PIXELS // (size[0] * size[1]))
        for start in range(0, len(low_res), per_chunk):
            chunk = low_res[start:start + per_chunk, None]
            yield self.predictor._transforms.postprocess_masks(chunk, size)[:, 0] > self.mask_threshold

    def _candidates(self, points: np.ndarray, size: tuple[int, int], crop_box: list[int],
                    orig_size: tuple[int, ...]) -> MaskData:
        """sam2's _process_batch up to the boxes, on the low-res logits; no mask is upsampled here."""
        min_iou = self.pred_iou_thresh if self.pred_iou_thresh > 0.0 and self.multimask_output else None
        points, low_res, iou, rows = self._decode(points, size, min_iou)
        m = low_res.shape[1]
        data = MaskData(iou_preds=iou[rows].flatten(), points=points[rows].repeat_interleave(m, dim=0),
                        mask_index=torch.arange(m).repeat(len(rows)), low_res=low_res.flatten(0, 1))
        if self.pred_iou_thresh > 0.0:
            data.filter(data["iou_preds"] > self.pred_iou_thresh)
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
