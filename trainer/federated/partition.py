"""Split one dataset into N simulated sites (`--clients N --split iid|by-class|dirichlet:ALPHA`), seeded.

Each image is labelled with its dominant class (the class with most instances; ties go to the lowest id):
    iid             a seeded shuffle dealt into N near-equal parts
    by-class        classes dealt round-robin, each client holds the images of its classes (needs >= N classes)
    dirichlet:ALPHA for each class, shares of its images drawn from Dir(ALPHA) over the clients (label skew, as in
                    Hsu et al. 2019); with one class only the sizes are skewed. Redrawn until every client has at
                    least `min_size` images.
"""

from __future__ import annotations

import numpy as np

MAX_DRAWS = 1000


def dominant_classes(class_ids: list[np.ndarray]) -> np.ndarray:
    """Per image, the class with the most instances (-1 for an image without instances)."""
    return np.array([int(np.bincount(ids).argmax()) if len(ids) else -1 for ids in class_ids], dtype=np.int64)


def partition(labels: np.ndarray, n_clients: int, split: str, seed: int = 0, min_size: int = 2) -> list[list[int]]:
    """Image indices of each client (sorted). `labels`: each image's dominant class."""
    n = len(labels)
    if n < n_clients * min_size:
        raise ValueError(f"--clients {n_clients}: {n} images cannot give each client {min_size} "
                         f"(one to train on, one to validate)")
    rng = np.random.default_rng(seed)
    if split == "iid":
        parts = np.array_split(rng.permutation(n), n_clients)
    elif split == "by-class":
        parts = _by_class(labels, n_clients)
    elif split.startswith("dirichlet:"):
        parts = _dirichlet(labels, n_clients, float(split.partition(":")[2]), rng, min_size)
    else:
        raise ValueError(f"--split: unknown split {split!r}")
    small = [i for i, p in enumerate(parts) if len(p) < min_size]
    if small:
        raise ValueError(f"--split {split}: client(s) {small} would hold fewer than {min_size} images "
                         f"(sizes {[len(p) for p in parts]}); use fewer clients or another split")
    return [sorted(int(i) for i in p) for p in parts]


def _by_class(labels: np.ndarray, n_clients: int) -> list[np.ndarray]:
    classes = np.unique(labels)
    if len(classes) < n_clients:
        raise ValueError(f"--split by-class: the dataset has {len(classes)} class(es) (by each image's dominant "
                         f"class) for {n_clients} clients; use iid or dirichlet:ALPHA, or fewer clients")
    owner = {int(c): k % n_clients for k, c in enumerate(classes)}
    return [np.flatnonzero([owner[int(label)] == client for label in labels]) for client in range(n_clients)]


def _dirichlet(labels: np.ndarray, n_clients: int, alpha: float, rng: np.random.Generator,
               min_size: int) -> list[np.ndarray]:
    for _ in range(MAX_DRAWS):
        parts: list[list[int]] = [[] for _ in range(n_clients)]
        for c in np.unique(labels):
            images = rng.permutation(np.flatnonzero(labels == c))
            cuts = (np.cumsum(rng.dirichlet(np.full(n_clients, alpha))) * len(images)).astype(int)[:-1]
            for client, chunk in enumerate(np.split(images, cuts)):
                parts[client].extend(chunk.tolist())
        if min(map(len, parts)) >= min_size:
            return [np.array(p, dtype=np.int64) for p in parts]
    raise ValueError(f"--split dirichlet:{alpha}: no draw in {MAX_DRAWS} gave every client {min_size} images; "
                     "raise ALPHA or use fewer clients")
