"""Segmentation fine-tuning kit: SAM2 and Detectron2 trainers sharing one data layer."""

__version__ = "0.1.0"
