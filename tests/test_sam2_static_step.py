"""Issue 17's step on CPU (real random-init sam2.1 tiny): one decoder call for a micro-batch, objects padded to a
fixed count that changes nothing, no host sync in a step, and a compiled decoder + loss equal to eager."""

import os
import time
import warnings

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes

from test_sam2_decode import _sam2_decode
from test_sam2_train import SIZE, _cfg, _model, data  # noqa: F401 - the same tiny model and data fixture
from trainer.augment import policy
from trainer.data.synthetic import make_dataset
from trainer.engine.images import TrainingImages, make_items
from trainer.engine.loop import TrainingStopped
from trainer.precision import resolve
from trainer.sam2_ft.objective import Sam2Objective, object_slots
from trainer.sam2_ft.trainer import Sam2Trainer
from trainer.sam2_model.forward import decode, encode_images, image_features, preprocess

# ops that wait for the device on a GPU (a value read back, or an output size that depends on the data)
SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "unique_dim", "equal", "is_nonzero",
           "bincount", "repeat_interleave"}


class SyncOps(TorchDispatchMode):
    """Counts the syncing aten ops that run under it."""

    def __init__(self):
        super().__init__()
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func._overloadpacket.__name__ in SYNCING:
            self.seen.append(str(func))
        return func(*args, **(kwargs or {}))


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("kind", ["point", "box_and_points", "mask"])
def test_one_decoder_call_for_all_images_matches_sam2(kind):
    """Two images x 3 objects, image-major, through one PointDecoder: sam2's outputs and gradients."""
    torch.manual_seed(0)
    model = build = _model()
    images = [(torch.rand(SIZE, SIZE, 3) * 255).byte().numpy() for _ in range(2)]
    with torch.no_grad():
        encoded = encode_images(build, preprocess(build, images))
    owner = torch.tensor([0, 0, 0, 1, 1, 1])
    n = len(owner)
    coords = torch.rand(n, 3, 2) * SIZE
    labels = {"point": [[1, -1, -1]], "box_and_points": [[2, 3, 0]], "mask": [[1, 0, -1]]}[kind]
    labels = torch.tensor(labels * n).int()
    mask_input = torch.randn(n, 1, SIZE // 4, SIZE // 4) * 5 if kind == "mask" else None
    results = []
    for batched in (False, True):
        model.zero_grad(set_to_none=True)
        feats = image_features(model, encoded)
        if batched:
            low_res, iou = decode(model, feats.for_objects([3, 3]), coords, labels, mask_input, kind == "point")
        else:
            low_res, iou = _sam2_decode(model, feats, owner, coords, labels, mask_input, kind == "point")
        (low_res.sigmoid().mean() + iou.square().mean()).backward()
        results.append((low_res.detach(), iou.detach(), _grads(model)))
    (want, want_iou, want_grads), (got, got_iou, got_grads) = results
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(got_iou, want_iou, atol=1e-6, rtol=1e-4)
    assert set(got_grads) == set(want_grads)
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-6, rtol=1e-3, msg=name)


def test_object_slots_are_the_largest_count_or_a_power_of_two_bucket():
    assert [object_slots(k, None) for k in (1, 3, 7)] == [1, 3, 7]
    assert [object_slots(k, 8) for k in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]
    assert object_slots(5, 6) == 6


@pytest.mark.parametrize("kind", ["points", "mask"])
def test_padded_objects_add_nothing_to_loss_or_gradients(data, one_thread, kind):
    """Images with different object counts padded to 8 slots: the loss and gradients of each image trained alone
    (no padding at all), averaged."""
    model = _model()
    objective = Sam2Objective(model, "dice_bce_iou", correction_clicks=1)

    def items():  # fresh generators each time; the second image keeps one object, so padding differs by image
        out = make_items(data, [0, 1], step=5, seed=0, max_objects=3)
        out[1].masks = out[1].masks[:1]
        return out

    assert len(items()[0].masks) > 1

    model.zero_grad(set_to_none=True)
    alone = [objective([item], kind) for item in items()]
    for loss in alone:
        (loss / len(alone)).backward()
    want, want_grads = torch.stack(alone).mean().detach(), _grads(model)

    model.zero_grad(set_to_none=True)
    objective.bucket = 8  # as a GPU or compiled step pads: 8 slots per image, most of them repeats
    got = objective(items(), kind)
    got.backward()
    torch.testing.assert_close(got.detach(), want, atol=1e-6, rtol=1e-5)
    got_grads = _grads(model)
    assert got_grads.keys() == want_grads.keys() and want_grads
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_a_step_reads_nothing_back_until_asked():
    """No syncing op in an unread step (data loading aside: it runs on the host anyway); one read = the figures.
    Uniform corrective clicks: a click at the error's centre (--centre-clicks > 0) reads the error masks back, since
    sam2's rule runs cv2's distance transform on the host (one copy per click; README says so)."""
    data = TrainingImages(make_dataset(2, SIZE, seed=3), SIZE, policy("none"), seed=0, views=1, progress=False)
    trainer = Sam2Trainer(_cfg(steps=4, correction_clicks=1, centre_clicks=0.0, prompts="point,points,box,mask"),
                          _model(), data, resolve("fp32", "cpu"))
    load = trainer.micro_batch

    def on_host(micro):
        with _disable_current_modes():
            return load(micro)

    trainer.micro_batch = on_host
    trainer.train_step()  # fills the feature cache (its fp16 range check reads back once per new entry)
    with SyncOps() as ops:
        for _ in range(3):
            assert trainer.train_step(read=False) == {"step": trainer.step}
    assert ops.seen == []
    record = trainer.read()
    assert record["step"] == 4 and record["loss"] > 0 and "skipped" not in record and not trainer.unread


def test_unread_non_finite_steps_are_skipped_on_the_device_and_stop_at_the_read(data):
    model = _model()
    with torch.no_grad():
        model.sam_mask_decoder.iou_token.weight.fill_(float("nan"))
    trainer = Sam2Trainer(_cfg(steps=10, max_bad_steps=3), model, data, resolve("fp32", "cpu"))
    before = {k: v.clone() for k, v in model.sam_mask_decoder.state_dict().items()}
    for _ in range(3):
        trainer.train_step(read=False)
    for k, v in model.sam_mask_decoder.state_dict().items():  # no update, no optimizer moments
        assert torch.equal(v, before[k]) or torch.isnan(v).all(), k
    assert all(float(s["exp_avg"].abs().sum()) == 0 for s in trainer.optimizer.state.values())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TrainingStopped, match="3 non-finite steps in a row at step 3"):
            trainer.read()
    assert sum("non-finite" in str(w.message) for w in caught) == 3


# inductor (C++ code generation) takes ~6 minutes to compile decoder + loss, forward and backward, for two clicks on
# this 2-core machine; aot_eager traces and differentiates the same graph in seconds. SEGKIT_TEST_INDUCTOR=1 adds it.
@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.skipif(
    not os.environ.get("SEGKIT_TEST_INDUCTOR"), reason="~6 min of C++ compilation; SEGKIT_TEST_INDUCTOR=1 runs it"))])
def test_compiled_step_gives_the_eager_loss_and_gradients(data, one_thread, backend):
    """--compile: decoder + loss through torch.compile, the same loss and gradients as eager (two clicks: the
    second with a mask input and one more point, a second graph)."""
    model = _model()
    results = []
    for compiled in (None, backend):
        torch._dynamo.reset()
        objective = Sam2Objective(model, "dice_bce_iou", correction_clicks=1, compile=compiled, pad_to=4)
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss = objective(make_items(data, [0, 1], step=2, seed=0, max_objects=4), "points")
        loss.backward()
        results.append((loss.detach(), _grads(model), time.perf_counter() - start))
    (eager, eager_grads, _), (comp, comp_grads, seconds) = results
    print(f"{backend}: first step incl. compilation {seconds:.1f} s")
    torch.testing.assert_close(comp, eager, atol=1e-5, rtol=1e-4)
    assert comp_grads.keys() == eager_grads.keys() and eager_grads
    for name, grad in eager_grads.items():
        torch.testing.assert_close(comp_grads[name], grad, atol=1e-5, rtol=1e-3, msg=name)
