"""Rebuild the shipped answer model from scratch: train, tune the thresholds, write the card.

    .venv/bin/python -m training --data ../shared/eval/squadshifts_wiki

Options are those of `training.train`; tuning and the card get its data, validation
split and folders, and tuning asks the ``--extra`` files' questions of the validation
articles as questions they cannot answer (`training.tune --foreign`), and the questions of
the ``--extra`` articles training held out as answerable ones of their own register. The model card
prints the exact command that built the shipped model (with ``--epochs`` and ``--extra``).
"""

from __future__ import annotations

import sys

from training import card, train, tune


def main() -> None:
    argv = sys.argv[1:]
    train.main(argv)
    tune.main(tune_options(argv))
    card.main(card_options(argv))


def tune_options(argv: list[str]) -> list[str]:
    """`training.tune`'s options from `training.train`'s: the same data, validation split
    and work folder, and each ``--extra`` file (another register) as a ``--foreign`` one,
    with the share of its articles that training held out."""
    args = train.options().parse_args(argv)
    out = ["--data", str(args.data), "--work", str(args.work)]
    out += ["--validation-share", str(args.validation_share), "--seed", str(args.seed)]
    out += ["--extra-validation-share", str(args.extra_validation_share)]
    for path in args.extra:
        out += ["--foreign", str(path)]
    return out


def card_options(argv: list[str]) -> list[str]:
    """`training.card`'s options from `training.train`'s: the same model and work folders."""
    args = train.options().parse_args(argv)
    return ["--out", str(args.out), "--work", str(args.work)]


if __name__ == "__main__":
    main()
