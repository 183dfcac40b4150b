"""What `trainer sam2-video` trains on lines up with what the model sees: after augmentation every frame's targets lie
on their object in that frame, an object keeps its index across the frames, and sam2's SAM2Train samples each
object's first-frame prompt from that object's mask (issue 29: check this before tuning any recipe)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.augment import Policy
from trainer.data.clips import Clip
from trainer.data.sample import SampleRef, SegmentationDataset
from trainer.video.batches import TrainingClips

COLOURS = np.array([[230, 40, 40], [40, 230, 40], [40, 40, 230]])  # object n is painted COLOURS[n] in every frame
WARP = Policy(scale=(0.7, 1.4), flip=True, degrees=20, shear=10)  # geometry only: colours stay the objects' own


def coloured_clip(frames: int = 5, size: int = 96) -> Clip:
    """Three discs of three colours moving apart in different directions (one leaves the view) on grey."""
    yy, xx = np.mgrid[:size, :size]
    starts, steps = [(20, 20), (70, 30), (45, 70)], [(4, 0), (0, 5), (-3, 6)]
    masks = np.zeros((frames, 3, size, size), bool)
    images = []
    for t in range(frames):
        image = np.full((size, size, 3), 110, np.uint8)
        for n, ((y, x), (dy, dx)) in enumerate(zip(starts, steps)):
            masks[t, n] = (yy - y - dy * t) ** 2 + (xx - x - dx * t) ** 2 < 12 ** 2
            image[masks[t, n]] = COLOURS[n]
        images.append(image)
    return Clip(images, masks, [1, 2, 3], "coloured")


def training_clips(size: int, frames: int, policy: Policy = WARP) -> TrainingClips:
    clip = coloured_clip()
    data = SegmentationDataset(["object"], [SampleRef("coloured", lambda: clip)])
    return TrainingClips(data, size, frames, policy, seed=0)


def colour_under(frame: np.ndarray, mask: np.ndarray) -> int:
    """The object colour most of the mask's pixels show (bilinear edges aside)."""
    pixels = frame[mask].astype(float)
    return int(np.bincount(np.abs(pixels[:, None] - COLOURS[None]).sum(-1).argmin(1), minlength=3).argmax())


@pytest.mark.parametrize("step", range(6))
def test_every_frames_targets_lie_on_their_object_after_augmentation(step):
    item = training_clips(64, 4).item(0, step, 0, max_objects=3)
    frames, masks = np.stack(item.frames), item.masks.numpy()
    assert masks.shape[:2] == (4, masks.shape[1]) and masks.shape[1] >= 1 and masks.shape[2:] == (64, 64)
    assert masks[0].any(axis=(1, 2)).all()  # every chosen object is in view on the prompted frame
    colours = []
    for k in range(masks.shape[1]):
        seen = {colour_under(frames[t], masks[t, k]) for t in range(4) if masks[t, k].sum() >= 10}
        assert len(seen) == 1, f"object {k} shows colours {seen} across the frames: targets and frames disagree"
        colours += seen
        for t in range(4):  # the mask covers its object's painted disc, shifted by no pixel (slivers: edges only)
            painted = np.abs(frames[t].astype(int) - COLOURS[colours[-1]]).sum(-1) < 150
            if masks[t, k].sum() >= 60:
                assert (painted & masks[t, k]).sum() / (painted | masks[t, k]).sum() > 0.85, (k, t)
    assert len(set(colours)) == len(colours)  # one object, one index


def test_sam2train_prompts_come_from_each_objects_own_first_frame_mask():
    from trainer.video.config import VideoTrainConfig
    from trainer.video.model import build_train_model
    from trainer.video.objective import collate

    clips = training_clips(128, 3)
    items = [clips.item(0, step, 0, max_objects=3) for step in (0, 1)]
    batch = collate(items)
    assert torch.equal(batch.masks, torch.cat([item.masks for item in items], 1))  # T x (clip-major objects)
    for t in range(3):  # each object's frame-t features are its own clip's frame t (encode's clip-major order)
        assert batch.flat_obj_to_img_idx[t].tolist() == [c * 3 + t for c, item in enumerate(items)
                                                          for _ in range(item.masks.shape[1])]
    cfg = VideoTrainConfig(no_pretrained=True, image_size=128, frames=3, point_prob=1.0, box_prob=0.0).validate()
    model = build_train_model(cfg, None, torch.device("cpu")).train()
    for seed in range(3):
        model.rng = np.random.default_rng(seed)
        points = model.prepare_prompt_inputs({}, batch)["point_inputs_per_frame"][0]
        for n, ((x, y),) in enumerate(points["point_coords"].round().long().tolist()):
            assert batch.masks[0, n, min(y, 127), min(x, 127)], f"object {n}'s click is off its mask"
        assert (points["point_labels"] == 1).all()


def test_training_tracks_the_frames_as_sam2s_video_predictor_does():
    """SAM2Train's tracking in the trainer (cached features, collated masks) and SAM2VideoPredictor (which J&F
    scores) give the same masks from the same weights and the same frame-0 masks: the loss is taken on what is scored."""
    import tempfile

    from trainer.video.config import VideoTrainConfig
    from trainer.video.evaluate import quiet_bars, track_clip, write_frames
    from trainer.video.model import VideoSpec, build_predictor, build_train_model
    from trainer.video.objective import VideoObjective, collate

    item = training_clips(128, 4, Policy()).item(0, 0, 0, max_objects=3)
    cfg = VideoTrainConfig(no_pretrained=True, image_size=128, frames=4, point_prob=0.0).validate()
    model = build_train_model(cfg, None, torch.device("cpu")).eval()
    batch = collate([item])
    with torch.no_grad():
        prompted = model.prepare_prompt_inputs(VideoObjective(model, cfg.weights_of_losses).encode([item]), batch)
        trained = torch.stack([o["pred_masks_high_res"][:, 0] > 0 for o in model.forward_tracking(prompted, batch)])
    predictor = build_predictor(VideoSpec("tiny", 128), None)
    predictor.load_state_dict(model.state_dict())
    clip = Clip(item.frames, item.masks.numpy(), [1, 2, 3], "coloured")
    with tempfile.TemporaryDirectory() as tmp, quiet_bars():
        tracked = track_clip(predictor, clip, "mask", predictor.init_state(str(write_frames(clip.frames, tmp))))
    assert trained[1:].flatten(1).any(1).float().mean() > 0.5  # a comparison of masks, not of empty frames
    for t in range(1, 4):
        for n in range(trained.shape[1]):
            a, b = trained[t, n].numpy(), tracked[t, n]
            assert (a & b).sum() >= 0.8 * max((a | b).sum(), 1), f"frame {t}, object {n}: training and tracking differ"
