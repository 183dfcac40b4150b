"""SAM2's prompt encoder + mask decoder as an ONNX graph of the per-prompt work only, for decoding clicks where the
image's features already are (onnxruntime on a server, onnxruntime-web in a browser), as SAM's web demo did.

The decoder's image-side work is done once per image, in PyTorch, as the app's PointDecoder does it
(`image_inputs`; the app sends it to the page with the embedding): the image tokens, the first two-way layer's
image-side projections (which do not depend on the prompt) and the high-res features laid out by the mask head's
sub-pixels. The graph then runs only what a prompt changes. Its inputs, for one image (S the model's input size,
N = (S/16)², H the attention heads):
    image_tokens   1 x N x 256        the image embedding plus sam2's "no mask" embedding, row-major positions
    t2i_keys       1 x H x N x 128/H  the first token-to-image attention's keys (with the positional encoding)
    t2i_values     1 x H x N x 128/H  ... and values
    i2t_queries    1 x H x N x 128/H  the first image-to-token attention's queries
    high_res_1     1 x N x 4 x 64     high_res_feats[1] (S/8), the 2 x 2 pixels under each position, plus the
                                      first transposed convolution's bias
    high_res_0     1 x N x 16 x 32    high_res_feats[0] (S/4), the 4 x 4 pixels under each position, plus the
                                      second transposed convolution's bias
    point_coords   1 x P x 2          (x, y) in pixels of the S x S model input: x * S / width, y * S / height
    point_labels   1 x P              1 / 0 clicks, 2 / 3 a box's corners (first, as sam2 gives them), -1 padding
and gives
    low_res_masks     1 x 4 x S/4 x S/4   logits: [0] the single-mask output (sam2's inference rule: the most
                                          stable of the 3 when the single one is unstable), [1:] the 3 multimask
    iou_predictions   1 x 4
Upsampling the chosen logits to the image (bilinear, sam2's postprocess_masks) and thresholding at 0 is the caller's.
A previous mask's logits as a prompt (sam2's mask_input) is not part of the graph: it changes the image side.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainer.sam2_model.model import load_folder
from trainer.sam2_model.point_decoder import PointDecoder

ONNX_DIR = "onnx"
DECODER_NAME = "decoder.onnx"
IMAGE_INPUTS = ("image_tokens", "t2i_keys", "t2i_values", "i2t_queries", "high_res_1", "high_res_0")
INPUTS = (*IMAGE_INPUTS, "point_coords", "point_labels")
OUTPUTS = ("low_res_masks", "iou_predictions")
OPSET = 18
MAX_ABS_DIFF = 1e-3  # an export whose logits differ more from PyTorch's on the check's random features is refused


class ExportError(RuntimeError):
    """The decoder could not be exported, or the export does not compute what sam2 computes."""


def image_side(decoder: PointDecoder) -> dict[str, torch.Tensor]:
    """The graph's image inputs from a PointDecoder of one image: its image-side work (done once, kept by the app
    for its own clicks) and its high-res features, each position's sub-pixels together (sub-pixel order: the first
    transposed convolution's row, column, then the second's), each with the bias of the convolution it is added to
    (one pass less over the largest maps per click)."""
    tokens, t2i_keys, t2i_values, i2t_queries = decoder.image_side()
    feat_0, feat_1 = (f.contiguous() for f in decoder.high_res)
    dc1, _, _, dc2, _ = decoder.decoder.output_upscaling
    h, w = decoder.shape[1:]
    high_1 = feat_1.reshape(-1, h, 2, w, 2).permute(1, 3, 2, 4, 0).reshape(1, h * w, 4, -1) + dc1.bias
    high_0 = feat_0.reshape(-1, h, 2, 2, w, 2, 2).permute(1, 4, 2, 5, 3, 6, 0).reshape(1, h * w, 16, -1) + dc2.bias
    return dict(zip(IMAGE_INPUTS, (tokens, t2i_keys, t2i_values, i2t_queries, high_1, high_0)))


def image_inputs(model: torch.nn.Module, features: dict) -> dict[str, np.ndarray]:
    """The graph's image inputs (float32) for the last image of a predictor's `_features`."""
    with torch.no_grad():
        decoder = PointDecoder(model, features["image_embed"][-1:].float(),
                               [f[-1:].float() for f in features["high_res_feats"]])
        return {name: t.float().cpu().numpy() for name, t in image_side(decoder).items()}


def onnx_inputs(image: dict[str, np.ndarray], coords: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """The graph's feed from an image's inputs (`image_inputs`) and one prompt (coords in model-input pixels)."""
    return {**{name: np.asarray(image[name], np.float32) for name in IMAGE_INPUTS},
            "point_coords": np.asarray(coords, np.float32).reshape(1, -1, 2),
            "point_labels": np.asarray(labels, np.float32).reshape(1, -1)}


class ClickDecoder(torch.nn.Module):
    """The per-prompt rest of sam2's prompt encoder and mask decoder, as PointDecoder runs it for one image
    (the transformer's image-side projections given), with sam2's mask head written for a graph: each transposed
    convolution as one matrix product per position, and the activations kept by position and sub-pixel, so the
    graph never reorders the 128² and 256² maps (only the 4 output masks are)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.prompt_encoder = model.sam_prompt_encoder
        self.mask_decoder = model.sam_mask_decoder
        if not self.mask_decoder.use_high_res_features:
            raise ExportError("the graph's mask head needs a model with high-res features (every sam2.1 model)")
        self.side = model.image_size // 16

    def forward(self, image_tokens: torch.Tensor, t2i_keys: torch.Tensor, t2i_values: torch.Tensor,
                i2t_queries: torch.Tensor, high_res_1: torch.Tensor, high_res_0: torch.Tensor,
                point_coords: torch.Tensor, point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        encoder, decoder = self.prompt_encoder, self.mask_decoder
        points = PointDecoder.from_image_side(self, (image_tokens, t2i_keys, t2i_values, i2t_queries))
        sparse = encoder._embed_points(point_coords, point_labels, pad=True)
        first = int(decoder.pred_obj_scores)  # token 0 is the object-score token when the model has one
        own = [decoder.obj_score_token.weight] if first else []
        output_tokens = torch.cat([*own, decoder.iou_token.weight, decoder.mask_tokens.weight])
        queries, keys = points._transformer(torch.cat([output_tokens[None], sparse], dim=1), None)
        iou = decoder.iou_prediction_head(queries[:, first])
        tokens_out = queries[0, first + 1:first + 1 + decoder.num_mask_tokens]
        hyper = torch.stack([mlp(tokens_out[i]) for i, mlp in enumerate(decoder.output_hypernetworks_mlps)])
        masks = self._mask_head(keys[0], hyper, high_res_1[0], high_res_0[0])[None]
        if decoder.dynamic_multimask_via_stability:
            single, single_iou = decoder._dynamic_multimask_via_stability(masks, iou)
        else:
            single, single_iou = masks[:, :1], iou[:, :1]
        return torch.cat([single, masks[:, 1:]], 1), torch.cat([single_iou, iou[:, 1:]], 1)

    @property
    def sam_prompt_encoder(self) -> torch.nn.Module:  # what PointDecoder reads of a model
        return self.prompt_encoder

    @property
    def sam_mask_decoder(self) -> torch.nn.Module:
        return self.mask_decoder

    def _mask_head(self, src: torch.Tensor, hyper: torch.Tensor, high_1: torch.Tensor,
                   high_0: torch.Tensor) -> torch.Tensor:
        """sam2's output_upscaling and hypernetwork product for src N x C (one image): masks M x S/4 x S/4."""
        dc1, ln1, act1, dc2, act2 = self.mask_decoder.output_upscaling
        x = _subpixels(src, dc1) + high_1  # N x 4 x 64
        x = act1(F.layer_norm(x, x.shape[-1:], ln1.weight, ln1.bias, ln1.eps))
        x = act2(_subpixels(x, dc2).flatten(1, 2) + high_0)  # N x 16 x 32
        masks = x @ hyper.T  # N x 16 x M
        h = self.side
        return masks.reshape(h, h, 2, 2, 2, 2, -1).permute(6, 0, 2, 4, 1, 3, 5).reshape(-1, 4 * h, 4 * h)


def _subpixels(x: torch.Tensor, conv: torch.nn.ConvTranspose2d) -> torch.Tensor:
    """A 2 x 2, stride-2 transposed convolution of x (... x C_in, channels last) as one matrix product, less its
    bias (image_side adds it to the features the output is added to): ... x 4 x C_out, the 2 x 2 pixels each
    input pixel makes (row-major)."""
    weight = conv.weight.permute(0, 2, 3, 1).reshape(conv.in_channels, -1)  # C_in x (2 x 2 x C_out)
    return (x @ weight).unflatten(-1, (4, conv.out_channels))


def example_inputs(model: torch.nn.Module, points: int = 2) -> dict[str, torch.Tensor]:
    """The graph's inputs at `model`'s image size, zeros (their values do not matter to the export)."""
    size = model.image_size
    decoder = model.sam_mask_decoder
    attn = decoder.transformer.layers[0].cross_attn_token_to_image
    heads, n, embed = attn.num_heads, (size // 16) ** 2, decoder.transformer_dim
    per_head = (1, heads, n, attn.internal_dim // heads)
    shapes = {"image_tokens": (1, n, embed), "t2i_keys": per_head, "t2i_values": per_head, "i2t_queries": per_head,
              "high_res_1": (1, n, 4, embed // 4), "high_res_0": (1, n, 16, embed // 8)}
    return {**{name: torch.zeros(shape) for name, shape in shapes.items()},
            "point_coords": torch.full((1, points, 2), size / 2.0), "point_labels": torch.ones(1, points)}


def export_decoder(model: torch.nn.Module, path: str | Path) -> Path:
    """Write `model`'s per-prompt decoder (an inference build: sam2's dynamic single-mask rule on) to `path` as ONNX,
    fp32, with the number of points free. Written aside, then renamed: a failed export leaves no half-written file
    where a loader would look."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        module = ClickDecoder(model).eval()
    except AttributeError as err:  # not a sam2 model
        raise ExportError(f"{path}: not a SAM2 model ({err})") from err
    points = torch.export.Dim("points", min=1, max=64)
    shapes = {name: None for name in INPUTS}
    shapes["point_coords"], shapes["point_labels"] = {1: points}, {1: points}
    partial = path.with_name(path.name + ".partial")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # the exporter notes that both point inputs share one "points" axis, which is what is meant
        warnings.filterwarnings("ignore", message=".*axis name: points will not be used")
        try:
            program = torch.onnx.export(module, tuple(example_inputs(model).values()), dynamo=True,
                                        input_names=list(INPUTS), output_names=list(OUTPUTS), dynamic_shapes=shapes,
                                        opset_version=OPSET, external_data=False, verbose=False)
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


class PromptDecoder(torch.nn.Module):
    """sam2's own prompt encoder and mask decoder, called as SAM2ImagePredictor._predict calls them for one prompt
    (points padded, a box as two labelled corners) on one image's features: what the graph is checked against."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.prompt_encoder = model.sam_prompt_encoder
        self.mask_decoder = model.sam_mask_decoder

    def forward(self, features: dict, point_coords: torch.Tensor,
                point_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        encoder, decoder = self.prompt_encoder, self.mask_decoder
        sparse, dense = encoder(points=(point_coords, point_labels), boxes=None, masks=None)
        masks, iou, _, _ = decoder.predict_masks(
            image_embeddings=features["image_embed"][-1:], image_pe=encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, repeat_image=False,
            high_res_features=[f[-1:] for f in features["high_res_feats"]])
        if decoder.dynamic_multimask_via_stability:
            single, single_iou = decoder._dynamic_multimask_via_stability(masks, iou)
        else:
            single, single_iou = masks[:, :1], iou[:, :1]
        return torch.cat([single, masks[:, 1:]], 1), torch.cat([single_iou, iou[:, 1:]], 1)


def random_features(model: torch.nn.Module, seed: int = 0) -> dict:
    """Random features of one image at `model`'s size, as a predictor's `_features` holds them."""
    g = torch.Generator().manual_seed(seed)
    size, embed = model.image_size, model.sam_mask_decoder.transformer_dim
    return {"image_embed": torch.randn(1, embed, size // 16, size // 16, generator=g),
            "high_res_feats": [torch.randn(1, embed // 8, size // 4, size // 4, generator=g),
                               torch.randn(1, embed // 4, size // 8, size // 8, generator=g)]}


def check_decoder(model: torch.nn.Module, path: str | Path, seed: int = 0) -> float:
    """The largest difference between sam2's own decoder and the graph under onnxruntime (fed `image_inputs`) on
    random features and prompts (3 clicks; 2 box corners and a click); raises ExportError above MAX_ABS_DIFF."""
    # lazy: onnxruntime only to check an export (the app's server path does not need it)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = PromptDecoder(model).eval()
    features = random_features(model, seed)
    image = image_inputs(model, features)
    g = torch.Generator().manual_seed(seed)
    size = model.image_size
    prompts = [(torch.rand(3, 2, generator=g) * size, torch.tensor([1.0, 0.0, 1.0])),
               (torch.rand(3, 2, generator=g) * size, torch.tensor([2.0, 3.0, 1.0]))]
    worst = 0.0
    for coords, labels in prompts:
        with torch.no_grad():
            expected = reference(features, coords[None], labels[None].int())
        got = session.run(list(OUTPUTS), onnx_inputs(image, coords.numpy(), labels.numpy()))
        worst = max(worst, *(float(np.abs(e.numpy() - o).max()) for e, o in zip(expected, got)))
    if not worst <= MAX_ABS_DIFF:
        raise ExportError(f"{path}: the exported decoder differs from sam2's by {worst:.2g} (over {MAX_ABS_DIFF})")
    return worst


def check_inputs(path: str | Path) -> Path:
    """`path` if it is this version's decoder graph (its inputs are INPUTS), else ExportError (e.g. a repo pushed
    with an earlier version's graph, or a file that is no graph)."""
    # lazy: onnx only to read a pushed graph (the app's server path does not need it)
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as err:  # protobuf's DecodeError and others for a file that is not a graph
        raise ExportError(f"{path}: not an ONNX graph ({type(err).__name__}: {err})") from err
    inputs = tuple(i.name for i in graph.input)
    if inputs != INPUTS:
        raise ExportError(f"{path}: not this version's decoder graph (its inputs: {', '.join(inputs)})")
    return Path(path)


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
