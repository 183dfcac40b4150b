"""Detectron2 Mask R-CNN fine-tuning (`python -m trainer detectron2`) and the shared inference helper."""
