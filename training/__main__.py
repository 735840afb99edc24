"""Rebuild the shipped answer model from scratch: train, tune the thresholds, write the card.

    .venv/bin/python -m training --data ../shared/eval/squadshifts_wiki

Options are those of `training.train`; tuning and the card use its defaults. The model
card prints the exact command that built the shipped model (with ``--epochs`` and
``--extra``).
"""

from __future__ import annotations

import sys

from training import card, train, tune


def main() -> None:
    train.main(sys.argv[1:])
    data = sys.argv[sys.argv.index("--data") + 1] if "--data" in sys.argv else None
    tune.main(["--data", data] if data else [])
    card.main([])


if __name__ == "__main__":
    main()
