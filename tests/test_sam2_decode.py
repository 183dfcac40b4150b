"""Training's decode (one PointDecoder per image, nothing copied per object) against sam2's MaskDecoder fed one
materialised row per object: same outputs and same gradients, in train mode, for every prompt kind."""

import pytest
import torch

from trainer.sam2_model.forward import decode, encode_images, image_features, preprocess
from trainer.sam2_model.model import Sam2Spec, build_model

SIZE = 128


def _sam2_decode(model, feats, owner, coords, labels, mask_input, multimask):
    """The reference: sam2's own decoder on the features gathered once per object."""
    sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=mask_input)
    low_res, iou, _, _ = model.sam_mask_decoder(
        image_embeddings=feats.image_embed[owner], image_pe=model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask,
        repeat_image=False, high_res_features=[f[owner] for f in feats.high_res])
    return low_res, iou


@pytest.mark.parametrize("kind", ["point", "box_and_points", "mask"])
def test_decode_matches_sam2_forward_and_backward(kind):
    torch.manual_seed(0)
    model = build_model(Sam2Spec("tiny", SIZE), train=True)
    images = [(torch.rand(SIZE, SIZE, 3) * 255).byte().numpy() for _ in range(2)]
    with torch.no_grad():
        encoded = encode_images(model, preprocess(model, images))
    owner = torch.tensor([1, 0, 1, 1, 0])  # objects of both images, not grouped: order must come back
    n = len(owner)
    coords = torch.rand(n, 3, 2) * SIZE
    labels = {"point": torch.tensor([[1, -1, -1]] * n), "box_and_points": torch.tensor([[2, 3, 0]] * n),
              "mask": torch.tensor([[1, 0, -1]] * n)}[kind].int()
    mask_input = torch.randn(n, 1, SIZE // 4, SIZE // 4) * 5 if kind == "mask" else None
    multimask = kind == "point"

    results = []
    for fn in (_sam2_decode, None):
        model.zero_grad(set_to_none=True)
        feats = image_features(model, encoded)  # conv_s0/conv_s1 run here: their gradients are compared too
        if fn is None:
            low_res, iou = decode(model, feats.select(owner), coords, labels, mask_input, multimask)
        else:
            low_res, iou = fn(model, feats, owner, coords, labels, mask_input, multimask)
        (low_res.sigmoid().mean() + iou.square().mean()).backward()
        grads = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        results.append((low_res.detach(), iou.detach(), grads))

    (want, want_iou, want_grads), (got, got_iou, got_grads) = results
    assert got.shape == want.shape == (n, 3 if multimask else 1, SIZE // 4, SIZE // 4)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got_iou, want_iou, atol=1e-6, rtol=1e-4)
    assert set(got_grads) == set(want_grads) and any(".conv_s0." in k for k in got_grads)
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-6, rtol=1e-3, msg=name)
