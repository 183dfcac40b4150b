"""SAM2's prompt encoder + mask decoder as one ONNX graph, for decoding clicks where the image's features already are
(onnxruntime on a server, onnxruntime-web in a browser), as SAM's web demo did.

The graph takes one image's features, as SAM2ImagePredictor.set_image leaves them (`predictor._features`), and one
prompt:
    image_embed       1 x 256 x S/16 x S/16
    high_res_feats_0  1 x 32 x S/4 x S/4
    high_res_feats_1  1 x 64 x S/8 x S/8
    point_coords      1 x P x 2   (x, y) in pixels of the S x S model input: x * S / width, y * S / height
    point_labels      1 x P       1 / 0 clicks, 2 / 3 a box's corners (first, as sam2 gives them), -1 padding
    mask_input        1 x 1 x S/4 x S/4   the previous mask's logits (any values when has_mask_input is 0)
    has_mask_input    1
and gives
    low_res_masks     1 x 4 x S/4 x S/4   logits: [0] the single-mask output (sam2's inference rule: the most
                                          stable of the 3 when the single one is unstable), [1:] the 3 multimask
    iou_predictions   1 x 4
Upsampling the chosen logits to the image (bilinear, sam2's postprocess_masks) and thresholding at 0 is the caller's.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from trainer.sam2_model.model import load_folder

ONNX_DIR = "onnx"
DECODER_NAME = "decoder.onnx"
INPUTS = ("image_embed", "high_res_feats_0", "high_res_feats_1", "point_coords", "point_labels", "mask_input",
          "has_mask_input")
OUTPUTS = ("low_res_masks", "iou_predictions")
OPSET = 18
MAX_ABS_DIFF = 1e-3  # an export whose logits differ more from PyTorch's on the check's random features is refused


class ExportError(RuntimeError):
    """The decoder could not be exported, or the export does not compute what sam2 computes."""


class PromptDecoder(torch.nn.Module):
    """sam2's own prompt encoder and mask decoder modules, called as SAM2ImagePredictor._predict calls them for one
    prompt (points padded, the box as two labelled corners), with both outputs of the decoder kept."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.prompt_encoder = model.sam_prompt_encoder
        self.mask_decoder = model.sam_mask_decoder

    def forward(self, image_embed: torch.Tensor, high_res_feats_0: torch.Tensor, high_res_feats_1: torch.Tensor,
                point_coords: torch.Tensor, point_labels: torch.Tensor, mask_input: torch.Tensor,
                has_mask_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        encoder, decoder = self.prompt_encoder, self.mask_decoder
        sparse = encoder._embed_points(point_coords, point_labels, pad=True)
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        has_mask = has_mask_input.reshape(1, 1, 1, 1)
        dense = has_mask * encoder.mask_downscaling(mask_input) + (1 - has_mask) * no_mask
        masks, iou, _, _ = decoder.predict_masks(
            image_embeddings=image_embed, image_pe=encoder.get_dense_pe(), sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense, repeat_image=False, high_res_features=[high_res_feats_0, high_res_feats_1])
        if decoder.dynamic_multimask_via_stability:
            single, single_iou = decoder._dynamic_multimask_via_stability(masks, iou)
        else:
            single, single_iou = masks[:, :1], iou[:, :1]
        return torch.cat([single, masks[:, 1:]], 1), torch.cat([single_iou, iou[:, 1:]], 1)


def example_inputs(model: torch.nn.Module, points: int = 2) -> tuple[torch.Tensor, ...]:
    """Inputs of the right shapes for `model`'s image size (their values do not matter to the export)."""
    size = model.image_size
    embed = model.sam_prompt_encoder.embed_dim
    return (torch.zeros(1, embed, size // 16, size // 16), torch.zeros(1, embed // 8, size // 4, size // 4),
            torch.zeros(1, embed // 4, size // 8, size // 8), torch.full((1, points, 2), size / 2.0),
            torch.ones(1, points), torch.zeros(1, 1, size // 4, size // 4), torch.zeros(1))


def export_decoder(model: torch.nn.Module, path: str | Path) -> Path:
    """Write `model`'s prompt encoder + mask decoder (an inference build: sam2's dynamic single-mask rule on) to
    `path` as ONNX, fp32, with the number of points free. Written aside, then renamed: a failed export leaves no
    half-written file where a loader would look."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = PromptDecoder(model).eval()
    points = torch.export.Dim("points", min=1, max=64)
    shapes = {name: None for name in INPUTS}
    shapes["point_coords"], shapes["point_labels"] = {1: points}, {1: points}
    partial = path.with_name(path.name + ".partial")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the exporter notes that both point inputs share one "points" axis, which is what is meant
        warnings.filterwarnings("ignore", message=".*axis name: points will not be used")
        try:
            program = torch.onnx.export(module, example_inputs(model), dynamo=True, input_names=list(INPUTS),
                                        output_names=list(OUTPUTS), dynamic_shapes=shapes, opset_version=OPSET,
                                        external_data=False, verbose=False)
        except Exception as err:  # the exporter raises many kinds; the caller needs one, with the reason
            raise ExportError(f"{path}: torch.onnx.export failed ({type(err).__name__}: {err})") from err
    program.save(str(partial))
    try:
        check_decoder(model, partial)
    except ExportError:
        partial.unlink()
        raise
    partial.replace(path)
    return path


def check_decoder(model: torch.nn.Module, path: str | Path, seed: int = 0) -> float:
    """The largest difference between the graph's outputs under onnxruntime and PyTorch's on random features and
    prompts (3 clicks, then 2 box corners and a click with a mask input); raises ExportError above MAX_ABS_DIFF."""
    # lazy: onnxruntime only to check an export (the app's server path does not need it)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    module = PromptDecoder(model).eval()
    g = torch.Generator().manual_seed(seed)
    embed, high_0, high_1, *_ = example_inputs(model)
    size = model.image_size
    features = {"image_embed": torch.randn(embed.shape, generator=g),
                "high_res_feats": [torch.randn(high_0.shape, generator=g), torch.randn(high_1.shape, generator=g)]}
    prompts = [(torch.rand(3, 2, generator=g) * size, torch.tensor([1.0, 0.0, 1.0]), None),
               (torch.rand(3, 2, generator=g) * size, torch.tensor([2.0, 3.0, 1.0]),
                torch.randn(1, 1, size // 4, size // 4, generator=g))]
    worst = 0.0
    for coords, labels, mask in prompts:
        feed = onnx_inputs(features, coords.numpy(), labels.numpy(), None if mask is None else mask.numpy())
        with torch.no_grad():
            expected = module(*(torch.from_numpy(feed[name]) for name in INPUTS))
        got = session.run(list(OUTPUTS), feed)
        worst = max(worst, *(float(np.abs(e.numpy() - o).max()) for e, o in zip(expected, got)))
    if not worst <= MAX_ABS_DIFF:
        raise ExportError(f"{path}: the exported decoder differs from sam2's by {worst:.2g} (over {MAX_ABS_DIFF})")
    return worst


def stage_onnx(run_dir: str | Path, out_dir: str | Path) -> Path | None:
    """push of a sam2 run: its decoder as out_dir/onnx/decoder.onnx, for onnxruntime and the browser. A model whose
    export fails is pushed without it (a warning says why): the app then decodes its clicks on the server."""
    model, _ = load_folder(run_dir)
    folder = Path(out_dir) / ONNX_DIR
    try:
        return export_decoder(model, folder / DECODER_NAME)
    except ExportError as err:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        warnings.warn(f"pushed without {ONNX_DIR}/{DECODER_NAME}: {err}", stacklevel=2)
        return None


def onnx_inputs(features: dict, coords: np.ndarray, labels: np.ndarray,
                mask_input: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The graph's feed from a predictor's `_features` and one prompt (coords already in model-input pixels)."""
    embed = features["image_embed"][-1:]
    high = [f[-1:] for f in features["high_res_feats"]]
    size = embed.shape[-1] * 4
    has_mask = mask_input is not None
    return {"image_embed": embed.float().cpu().numpy(), "high_res_feats_0": high[0].float().cpu().numpy(),
            "high_res_feats_1": high[1].float().cpu().numpy(),
            "point_coords": np.asarray(coords, np.float32).reshape(1, -1, 2),
            "point_labels": np.asarray(labels, np.float32).reshape(1, -1),
            "mask_input": (np.asarray(mask_input, np.float32).reshape(1, 1, size, size) if has_mask
                           else np.zeros((1, 1, size, size), np.float32)),
            "has_mask_input": np.array([float(has_mask)], np.float32)}
