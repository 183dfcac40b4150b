"""sam2.1's architectures by size: imports nothing heavy, so the CLI's options can name them (`--help` stays
instant)."""

# sam2.1 configs packaged inside the sam2 wheel, and the matching official Hub repos.
CONFIGS = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}
HUB_IDS = {size: f"facebook/sam2.1-hiera-{size.replace('_', '-')}" for size in CONFIGS}
