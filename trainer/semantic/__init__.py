"""Promptless semantic segmentation: sam2's image encoder as a (frozen) backbone under a UNet-style head."""
