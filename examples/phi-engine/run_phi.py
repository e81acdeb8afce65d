#!/usr/bin/env python3
"""Compute the toy Φ of the connectome named in the config and print one JSON line."""

import csv
import json
import os
import sys

from phi import entropy, integrated_information

HERE = os.path.dirname(os.path.abspath(__file__))


def load_matrix(path):
    with open(path, newline="") as f:
        rows = [[float(x) for x in row] for row in csv.reader(f) if row and not row[0].startswith("#")]
    return rows


def main():
    with open(os.path.join(HERE, "active-config.json")) as f:
        config = json.load(f)
    matrix = load_matrix(os.path.join(HERE, config["connectome"]))
    phi = integrated_information(matrix, normalise=config.get("normalise", True))
    flat = [w for row in matrix for w in row]
    print(json.dumps({"model": config["model"], "phi": round(phi, 6), "entropy": round(entropy(flat), 6)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
