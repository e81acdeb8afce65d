#!/usr/bin/env python3
"""The sample backend through omnimind_sentinel.serve, from a source checkout (no install needed).

    /usr/bin/python3 examples/backend/serve.py --port 8000 [--pid-file PATH] [serve/uvicorn options]
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integrations", "python"))

from omnimind_sentinel.serve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["sample_backend:app", "--app-dir", HERE, *sys.argv[1:]]))
