"""Bipartitions of a small system: the cuts over which the toy Φ is minimised."""

from itertools import combinations


def bipartitions(nodes):
    """Yield every unordered split of `nodes` into two non-empty parts."""
    nodes = list(nodes)
    n = len(nodes)
    seen = set()
    for k in range(1, n // 2 + 1):
        for part in combinations(nodes, k):
            rest = tuple(x for x in nodes if x not in part)
            key = frozenset([part, rest])
            if key in seen:
                continue
            seen.add(key)
            yield part, rest
