"""SAM2's prompt encoder + mask decoder for many point prompts on ONE image, several times cheaper on a CPU.

sam2's MaskDecoder copies the image embedding once per prompt and runs every projection of its two-way transformer
on all 4096 image positions of every copy. `PointDecoder` keeps one copy: the first layer's image-side projections
do not depend on the prompt and run once per image (kept with the image, so a click reuses them), and the later
attention projections are folded into the prompt's 8 tokens instead of the 4096 positions (same values, about a
third of the transformer's FLOPs). The mask head runs channels-last, only for the prompts and masks asked for.
Used by the automatic mask generator (automatic.py) and by the app's clicks (`predict`), one image at a time, and by
training for a micro-batch of B images at once (K prompts each, image-major): one call instead of one per image.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _heads(attn: torch.nn.Module) -> tuple[int, int]:
    return attn.num_heads, attn.internal_dim // attn.num_heads


def _split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """B x N x (H d) -> B x H x N x d, as sam2's Attention._separate_heads."""
    return x.unflatten(-1, (heads, -1)).transpose(1, 2)


def _tokens_to_image(attn: torch.nn.Module, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """sam2's Attention(q, k, v) for P x T prompt tokens attending to their own P x N image positions.

    The key and value projections act on the token side (q·Wk, then Wv after the attention-weighted sum of the
    image) instead of on N >> T positions; the value bias passes through because attention weights sum to one.
    (The key bias only shifts each row of scores, which the softmax ignores; it is kept so that it gets sam2's
    gradient, ~0, and the optimizer treats it as sam2's decoder would.)
    """
    P, T, C = q.shape
    H, d = _heads(attn)
    queries = attn.q_proj(q).view(P, T, H, d)
    qk = torch.einsum("pthj,hjc->phtc", queries, attn.k_proj.weight.view(H, d, C)).reshape(P, H * T, C)
    shift = torch.einsum("pthj,hj->pht", queries, attn.k_proj.bias.view(H, d)).reshape(P, H * T, 1)
    weights = torch.softmax(torch.baddbmm(shift, qk, k.transpose(1, 2)) * d ** -0.5, dim=-1)
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
    if shared_q is not None:  # B x H x N x d, the prompts image-major
        scores = torch.einsum("bkthj,bhnj->bkhtn", keys.unflatten(0, (len(shared_q), -1)), shared_q).flatten(0, 1)
    else:
        folded = torch.einsum("pthj,hjc->phtc", keys, attn.q_proj.weight.view(H, d, C)).reshape(P, H * T, C)
        bias = torch.einsum("pthj,hj->pht", keys, attn.q_proj.bias.view(H, d)).reshape(P, H * T, 1)
        scores = torch.baddbmm(bias, folded, q.transpose(1, 2)).view(P, H, T, -1)
    weights = torch.softmax(scores * d ** -0.5, dim=2).flatten(1, 2)
    values = torch.einsum("pthj,chj->phtc", attn.v_proj(v).view(P, T, H, d), attn.out_proj.weight.view(C, H, d))
    return torch.baddbmm(attn.out_proj.bias, weights.transpose(1, 2), values.reshape(P, H * T, C))


HEAD_ROWS = 4  # rows of the S/16 grid per band of the mask head without gradients (16 rows of its 256² output)


class PointDecoder:
    """sam2's prompt encoder + mask decoder for many prompts (points, box corners, optional mask input) on B images,
    without a copy of an image per prompt. Without a mask input the first transformer layer's image-side
    projections do not depend on the prompt: they run once per PointDecoder and are reused by every call.
    Differentiable (training builds one per micro-batch and step).

    image_embed B x C x h x w and high_res as SAM2ImagePredictor holds them (`_features`); a call's P prompts are
    B x K, image-major (prompt p belongs to image p // K). B = 1 for the app and the automatic generator.
    """

    def __init__(self, model: torch.nn.Module, image_embed: torch.Tensor, high_res: list[torch.Tensor]):
        self.model, self.decoder = model, model.sam_mask_decoder
        self.image_embed = image_embed
        self.shape = image_embed.shape[1:]
        self.pe = model.sam_prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2)  # 1 x N x C
        self.high_res = [f.contiguous(memory_format=torch.channels_last) for f in high_res]  # the layout of src below
        self._images = len(image_embed)
        self._shared: tuple[torch.Tensor, ...] | None = None

    @classmethod
    def from_image_side(cls, model: torch.nn.Module, shared: tuple[torch.Tensor, ...]) -> "PointDecoder":
        """A decoder whose image-side work (`image_side()` of another one) was done elsewhere, e.g. by the server for
        a graph in a browser: it runs the transformer for prompts without a mask input; the mask head is the
        caller's (it has no high-res features)."""
        self = cls.__new__(cls)
        self.model, self.decoder = model, model.sam_mask_decoder
        self.image_embed, self.high_res, self.shape = None, None, None
        self.pe = model.sam_prompt_encoder.get_dense_pe().flatten(2).transpose(1, 2)
        self._images, self._shared = len(shared[0]), tuple(shared)
        return self

    def image_side(self) -> tuple[torch.Tensor, ...]:
        """The prompt-independent tensors (image tokens B x N x C; keys and values of the first token-to-image
        attention and queries of the first image-to-token attention, B x heads x N x C/heads/2)."""
        return self._shared_first_layer()

    def precompute(self) -> "PointDecoder":
        """Do the prompt-independent work now (e.g. when an image is uploaded) rather than at the first prompt."""
        self._shared_first_layer()
        return self

    @property
    def images(self) -> int:
        return self._images

    def _add_image(self, x: torch.Tensor, per_image: torch.Tensor) -> torch.Tensor:
        """x (P x ...) plus its image's row of per_image (B x ...), in place: broadcast, never copied per prompt."""
        x.unflatten(0, (self.images, -1)).add_(per_image.unsqueeze(1))
        return x

    def _image_tokens(self, dense: torch.Tensor) -> torch.Tensor:
        """The image plus the dense prompt embedding as tokens: B x N x C for the "no mask" embedding (1 x C x h x w),
        P x N x C for the prompts' own mask inputs (P x C x h x w)."""
        if len(dense) == 1:
            return (self.image_embed + dense).flatten(2).transpose(1, 2)
        tokens = self.image_embed.unsqueeze(1) + dense.unflatten(0, (self.images, -1))
        return tokens.flatten(0, 1).flatten(2).transpose(1, 2)

    def _shared_first_layer(self) -> tuple[torch.Tensor, ...]:
        """(image tokens, keys and values of the first token-to-image attention, queries of the first
        image-to-token attention) for prompts without a mask input: computed once."""
        if self._shared is None:
            _, dense = self.model.sam_prompt_encoder(points=None, boxes=None, masks=None)  # "no mask", 1 x C x h x w
            keys = self._image_tokens(dense)
            first = self.decoder.transformer.layers[0]
            t2i, i2t = first.cross_attn_token_to_image, first.cross_attn_image_to_token
            keys_pe = keys + self.pe
            self._shared = (keys, _split_heads(t2i.k_proj(keys_pe), t2i.num_heads),
                            _split_heads(t2i.v_proj(keys), t2i.num_heads),
                            _split_heads(i2t.q_proj(keys_pe), i2t.num_heads))
        return self._shared

    def _first_layer(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sam2's first TwoWayAttentionBlock (skip_first_layer_pe) with the image-side projections shared."""
        layer = self.decoder.transformer.layers[0]
        keys, t2i_k, t2i_v, i2t_q = self._shared_first_layer()
        queries = layer.norm1(layer.self_attn(q=tokens, k=tokens, v=tokens))
        t2i = layer.cross_attn_token_to_image
        P, T, _ = queries.shape
        q = _split_heads(t2i.q_proj(queries + tokens).unflatten(0, (self.images, -1)).flatten(1, 2), t2i.num_heads)
        out = F.scaled_dot_product_attention(q, t2i_k, t2i_v).transpose(1, 2).reshape(P, T, -1)
        queries = layer.norm2(queries + t2i.out_proj(out))
        queries = layer.norm3(queries + layer.mlp(queries))
        out = _image_to_tokens(layer.cross_attn_image_to_token, None, queries + tokens, queries, shared_q=i2t_q)
        return queries, layer.norm4(self._add_image(out, keys))  # in place into a fresh result: no new N x C per prompt

    def _layer(self, layer: torch.nn.Module, queries: torch.Tensor, keys: torch.Tensor,
               tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sam2's TwoWayAttentionBlock.forward with one row of image tokens per prompt (P x N x C)."""
        if layer.skip_first_layer_pe:
            queries = layer.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + tokens
            queries = queries + layer.self_attn(q=q, k=q, v=queries)
        queries = layer.norm1(queries)
        keys_pe = keys + self.pe
        queries = layer.norm2(queries + _tokens_to_image(layer.cross_attn_token_to_image, queries + tokens, keys_pe,
                                                         keys))
        queries = layer.norm3(queries + layer.mlp(queries))
        out = _image_to_tokens(layer.cross_attn_image_to_token, keys_pe, queries + tokens, queries)
        return queries, layer.norm4(out.add_(keys))  # in place into a fresh result: no new 4096 x C per prompt

    def _transformer(self, tokens: torch.Tensor, dense: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """sam2's TwoWayTransformer.forward: (tokens out P x T x C, image out P x N x C); `dense` is the prompts'
        mask-input embedding (P x C x h x w) or None."""
        transformer = self.decoder.transformer
        layers = list(transformer.layers)
        if dense is None:
            queries, keys = self._first_layer(tokens)
            layers = layers[1:]
        else:
            queries, keys = tokens, self._image_tokens(dense)
        for layer in layers:
            queries, keys = self._layer(layer, queries, keys, tokens)
        out = _tokens_to_image(transformer.final_attn_token_to_image, queries + tokens, keys + self.pe, keys)
        return transformer.norm_final_attn(queries + out), keys

    def __call__(self, coords: torch.Tensor, labels: torch.Tensor, multimask: bool = True,
                 min_iou: float | None = None,
                 mask_input: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """coords P x n x 2 in model-input pixels, labels P x n (1/0 points, 2/3 box corners, -1 padding), optional
        mask_input P x 1 x 4h x 4w logits -> (low-res logits P' x M x 4h x 4w, predicted IoU P x M, rows) as sam2's
        MaskDecoder.forward gives them: M = 3 with `multimask`, else 1 (with sam2's dynamic fallback to the most
        stable of the 3 in an inference model). With `min_iou` (multimask only) the mask head runs only for the P'
        prompts (`rows`) with a predicted IoU above it; rows = all prompts otherwise."""
        decoder = self.decoder
        sparse, dense = self.model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=mask_input)
        first = int(decoder.pred_obj_scores)  # token 0 is the object-score token when the model has one
        own = [decoder.obj_score_token.weight] if first else []
        output_tokens = torch.cat([*own, decoder.iou_token.weight, decoder.mask_tokens.weight])
        tokens = torch.cat([output_tokens.expand(len(sparse), -1, -1), sparse], dim=1)
        queries, keys = self._transformer(tokens, None if mask_input is None else dense)

        dynamic = not multimask and decoder.dynamic_multimask_via_stability and not decoder.training
        if min_iou is not None and (not multimask or self.images > 1):
            raise ValueError("min_iou needs multimask output and one image")
        chosen = slice(1, None) if multimask else slice(None) if dynamic else slice(0, 1)
        # with gradients every mask token runs, as in sam2: the unused ones get zero gradients, not none, so the
        # optimizer (weight decay, moments) treats them as it does with sam2's decoder
        computed = slice(None) if torch.is_grad_enabled() else chosen
        all_iou = decoder.iou_prediction_head(queries[:, first])
        iou = all_iou[:, chosen]
        rows = torch.arange(len(queries), device=queries.device)
        if min_iou is not None:
            rows = rows[(iou > min_iou).any(1)]
            keys = keys[rows]
        tokens_out = queries[rows, first + 1:first + 1 + decoder.num_mask_tokens][:, computed]
        hyper = torch.stack([mlp(tokens_out[:, i]) for i, mlp in
                             enumerate(decoder.output_hypernetworks_mlps[computed])], dim=1)
        src = keys.transpose(1, 2).unflatten(2, self.shape[1:])  # channels-last view, P' x C x h x w
        masks = self._mask_head(src, hyper)
        if computed != chosen:
            masks = masks[:, chosen]
        if dynamic:  # sam2's own choice between the single-mask token and the best of the three
            masks, iou = decoder._dynamic_multimask_via_stability(masks, iou)
        return masks, iou, rows

    def _mask_head(self, src: torch.Tensor, hyper: torch.Tensor) -> torch.Tensor:
        """The end of sam2's MaskDecoder.predict_masks: upscaling with the high-res features, then the
        hypernetworks. Without gradients it runs in bands of rows (each input row of the stride-2 transposed
        convolutions makes its own output rows, so bands are exact): the 128² and 256² activations of a band stay
        in cache instead of a fresh P x 32 x 256² tensor per call."""
        if torch.is_grad_enabled() or not self.decoder.use_high_res_features:
            return self._upscale_and_project(src, hyper, *self.high_res)
        h = src.shape[2]
        feat_s0, feat_s1 = self.high_res
        masks = src.new_empty(len(src), hyper.shape[1], 4 * h, 4 * src.shape[3])
        for r in range(0, h, HEAD_ROWS):
            band = slice(r, r + HEAD_ROWS)
            masks[:, :, 4 * r:4 * (r + HEAD_ROWS)] = self._upscale_and_project(
                src[:, :, band], hyper, feat_s0[:, :, 4 * r:4 * (r + HEAD_ROWS)], feat_s1[:, :, 2 * r:2 * (r + HEAD_ROWS)])
        return masks

    def _upscale_and_project(self, src: torch.Tensor, hyper: torch.Tensor, feat_s0: torch.Tensor,
                             feat_s1: torch.Tensor) -> torch.Tensor:
        """sam2's upscaling (channels-last; its LayerNorm2d as one layer_norm over the channels) and hypernetwork
        product for src P x C x rows x w."""
        decoder = self.decoder
        if not decoder.use_high_res_features:
            upscaled = decoder.output_upscaling(src)
        else:
            dc1, ln1, act1, dc2, act2 = decoder.output_upscaling
            x = self._add_image(dc1(src), feat_s1).permute(0, 2, 3, 1)  # in place: the 128² and 256² maps are big
            x = act1(F.layer_norm(x, x.shape[-1:], ln1.weight, ln1.bias, ln1.eps)).permute(0, 3, 1, 2)
            upscaled = act2(self._add_image(dc2(x), feat_s0))
        b, c, h, w = upscaled.shape
        pixels = upscaled.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view when channels-last
        return (pixels @ hyper.transpose(1, 2)).transpose(1, 2).reshape(b, hyper.shape[1], h, w)


def predict(predictor, decoder: PointDecoder, point_coords: np.ndarray | None, point_labels: np.ndarray | None,
            box: np.ndarray | None, multimask_output: bool, top: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SAM2ImagePredictor.predict for its current image through `decoder` (built from that image's features):
    (masks k x H x W bool, scores k), best score first; only the `top` best masks are upsampled to the image."""
    _, coords, labels, box_coords = predictor._prep_prompts(point_coords, point_labels, box, None,
                                                            normalize_coords=True)
    if box_coords is not None:  # a box is two corner points labelled 2 and 3, before the clicks (as sam2 does)
        corners = torch.tensor([[2, 3]], dtype=torch.int, device=box_coords.device)
        parts = [(box_coords.reshape(-1, 2, 2), corners), *([(coords, labels)] if coords is not None else [])]
        coords, labels = torch.cat([c for c, _ in parts], 1), torch.cat([lab for _, lab in parts], 1)
    low_res, iou, _ = decoder(coords, labels, multimask_output)
    order = torch.argsort(iou[0], descending=True)[:top]
    masks = predictor._transforms.postprocess_masks(low_res[:, order], predictor._orig_hw[-1])
    return (masks[0] > predictor.mask_threshold).cpu().numpy(), iou[0, order].float().cpu().numpy()
