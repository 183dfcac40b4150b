"""Names both the model builder and the CLI accept (kept free of heavy imports so `--help` stays instant)."""

DEFAULT_ZOO_CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
NORMS = ("FrozenBN", "GN", "BN", "SyncBN")
DEPTHS = (18, 34, 50, 101, 152)
