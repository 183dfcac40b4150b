"""SAM2 fine-tuning on sam2 1.1.0's own modules (build_sam2, SAM2ImagePredictor, SAM2AutomaticMaskGenerator)."""
