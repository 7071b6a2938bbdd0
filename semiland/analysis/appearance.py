"""Appearance maps and their overlap scores (MiniFrance §4, Figs. 4–6 and 13, Table 5).

Features of every sub-tile → t-SNE to 2-D → one one-class SVM per group (a region, or a whole split)
fitted on its points → its *appearance map*: the cells of a G × G grid over the 2-D plane that the SVM
accepts. Between two maps S₁, S₂ (boolean grids):
    IoU(S₁, S₂) = |S₁ ∩ S₂| / |S₁ ∪ S₂|      (symmetric similarity)
    IoT(S₁, S₂) = |S₁ ∩ S₂| / |S₂|            (how much of the target S₂ — e.g. a test region — S₁ covers)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID = 160  # cells per side of the appearance plane
NU = 0.1  # one-class SVM ν: the share of a group's points allowed outside its map


def embed_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, D) features → (N, 2) t-SNE coordinates (standardised, PCA to ≤ 50 dims first)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-8)
    n = len(x)
    if n < 3:  # t-SNE needs a few points; a line is an honest 2-D picture of one or two
        return np.c_[np.arange(n, dtype=float), np.zeros(n)]
    if x.shape[1] > 50:
        x = PCA(n_components=min(50, n), random_state=seed).fit_transform(x)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


@dataclass
class Plane:
    """The grid the maps live on: the embedding's bounding box, padded by 10 %, scaled to [0, 1]²."""

    lo: np.ndarray  # (2,)
    span: np.ndarray  # (2,)
    grid: int = GRID

    @classmethod
    def around(cls, xy: np.ndarray, grid: int = GRID) -> Plane:
        lo, hi = xy.min(0), xy.max(0)
        pad = 0.1 * np.maximum(hi - lo, 1e-6)
        return cls(lo - pad, hi - lo + 2 * pad, grid)

    def unit(self, xy: np.ndarray) -> np.ndarray:
        return (xy - self.lo) / self.span

    def cells(self) -> np.ndarray:
        """(G², 2) cell centres in unit coordinates, row-major with y up the rows."""
        c = (np.arange(self.grid) + 0.5) / self.grid
        gy, gx = np.meshgrid(c, c, indexing="ij")
        return np.c_[gx.ravel(), gy.ravel()]


def appearance_map(points: np.ndarray, plane: Plane, nu: float = NU, gamma: float = 20.0) -> np.ndarray:
    """(n, 2) embedded points of one group → (G, G) bool map accepted by its one-class SVM.

    gamma is the RBF width in unit-plane coordinates (20 ≈ a kernel radius of a sixth of the plane), fixed
    so that maps of different groups are comparable.
    """
    from sklearn.svm import OneClassSVM

    if len(points) == 0:
        return np.zeros((plane.grid, plane.grid), bool)
    svm = OneClassSVM(nu=nu, gamma=gamma).fit(plane.unit(points))
    accepted = svm.decision_function(plane.cells()) >= 0
    return accepted.reshape(plane.grid, plane.grid)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def iot(source: np.ndarray, target: np.ndarray) -> float:
    """Share of `target`'s map that `source` covers."""
    size = target.sum()
    return float(np.logical_and(source, target).sum() / size) if size else 0.0


def overlap_matrices(maps: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """IoU[i, j] and IoT[i, j] = IoT(map_i, map_j) (how much of j that i covers), in dict order."""
    names = list(maps)
    n = len(names)
    m_iou, m_iot = np.zeros((n, n)), np.zeros((n, n))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            m_iou[i, j], m_iot[i, j] = iou(maps[a], maps[b]), iot(maps[a], maps[b])
    return m_iou, m_iot


def group_maps(xy: np.ndarray, groups: list[str], plane: Plane) -> dict[str, np.ndarray]:
    """One appearance map per distinct group label (in sorted order)."""
    labels = np.asarray(groups)
    return {g: appearance_map(xy[labels == g], plane) for g in sorted(set(groups))}
