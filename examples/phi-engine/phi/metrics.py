"""A toy integrated-information measure over a weighted connectome.

Not IIT: Φ here is the weakest cut, i.e. the minimum over bipartitions of the normalised
weight crossing the cut. It only has to be deterministic so the demo can show a changed
release producing a changed number.
"""

import math

from .partition import bipartitions


def entropy(weights):
    """Shannon entropy (bits) of the normalised weight distribution."""
    total = sum(weights)
    if total <= 0:
        return 0.0
    return -sum((w / total) * math.log2(w / total) for w in weights if w > 0)


def cut_weight(matrix, part, rest):
    return sum(matrix[i][j] + matrix[j][i] for i in part for j in rest)


def integrated_information(matrix, normalise=True):
    """Minimum normalised cut weight over all bipartitions (0 for a disconnected system)."""
    nodes = range(len(matrix))
    best = math.inf
    for part, rest in bipartitions(nodes):
        w = cut_weight(matrix, part, rest)
        if normalise:
            w /= min(len(part), len(rest))
        best = min(best, w)
    return 0.0 if best is math.inf else best
