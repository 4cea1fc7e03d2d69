#!/usr/bin/env python3
"""Strip outputs, execution counts and run metadata from notebooks, so they are committed clean.

    .venv/bin/python scripts/strip_notebooks.py            # strip notebooks/*.ipynb in place
    .venv/bin/python scripts/strip_notebooks.py --check    # exit 1 if any needs stripping (CI)

tests/test_notebooks.py asserts the committed notebooks are stripped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")


def strip(book: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """``book`` without outputs, execution counts, cell run metadata or extra notebook metadata."""
    for cell in book.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata = {}
    book.metadata = {k: book.metadata[k] for k in KEPT_NOTEBOOK_METADATA if k in book.metadata}
    return book


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)"
    )
    parser.add_argument("--check", action="store_true", help="report, do not rewrite")
    args = parser.parse_args(argv)
    dirty = []
    for path in args.paths or sorted(NOTEBOOKS.glob("*.ipynb")):
        before = path.read_text(encoding="utf-8")
        book = strip(nbformat.reads(before, as_version=4))
        after = nbformat.writes(book) + "\n"
        if after != before:
            dirty.append(path)
            if not args.check:
                path.write_text(after, encoding="utf-8")
    for path in dirty:
        print(f"{'needs stripping' if args.check else 'stripped'}: {path}")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
