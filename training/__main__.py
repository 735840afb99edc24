"""Rebuild the shipped answer model from scratch: train, tune the thresholds, write the card.

    .venv/bin/python -m training --data ../shared/eval/squadshifts_wiki

Options are those of `training.train`; tuning gets its ``--data``, and asks the
``--extra`` files' questions of the validation articles as questions they cannot answer
(`training.tune --foreign`); the card uses its defaults. The model card prints the
exact command that built the shipped model (with ``--epochs`` and ``--extra``).
"""

from __future__ import annotations

import itertools
import sys

from training import card, train, tune


def main() -> None:
    train.main(sys.argv[1:])
    tune.main(tune_options(sys.argv[1:]))
    card.main([])


def tune_options(argv: list[str]) -> list[str]:
    """`training.tune`'s options from `training.train`'s: the same ``--data``, and each
    ``--extra`` file (another register) as a ``--foreign`` one."""
    out = []
    for flag, value in itertools.pairwise(argv):
        if flag == "--data":
            out += ["--data", value]
        elif flag == "--extra":
            out += ["--foreign", value]
    return out


if __name__ == "__main__":
    main()
