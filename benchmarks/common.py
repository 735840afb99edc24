"""What the benchmark scripts share: the evaluation data, timing, fresh child processes
with their peak memory, and the section of benchmarks/RESULTS.md that each run rewrites.

Every script runs from the repository root as a module, ``python -m benchmarks.NAME``, and
imports this one as ``benchmarks.common``: no script touches ``sys.path``. This module needs
the standard library only, so that gpu_embed's ``measure`` step can import its script on a
GPU machine that has torch and sentence-transformers but none of seedrag's other packages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"
# The evaluation sets live beside the repository, not in it (they are not ours to ship).
EVAL_DIR = REPO.parent / "shared" / "eval"
HEADER = "# Benchmark results\n\nEvery table below is written by the script named in its section.\n"
# Options whose value describes the machine or the run, not a parameter: left out of the
# "Reproduce" line, since rerunning needs no remark.
REMARKS = ("--load-note",)


def argument_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser for this script: usage ``python -m benchmarks.NAME``, and ``doc`` (the
    module docstring, examples included) as the description, line breaks kept."""
    return argparse.ArgumentParser(
        prog=f"python -m benchmarks.{Path(sys.argv[0]).stem}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_eval_dir(parser: argparse.ArgumentParser) -> None:
    """``--eval-dir DIR``, the folder of the evaluation sets (default `EVAL_DIR`)."""
    parser.add_argument(
        "--eval-dir",
        type=Path,
        default=EVAL_DIR,
        help="folder holding xquad_en/, squadshifts_wiki/, covidqa_dev/ and "
        "seed_questions.jsonl (default: ../shared/eval from the repository root)",
    )


def missing(*paths: Path) -> bool:
    """True, after saying which on stderr, when one of ``paths`` does not exist.

    A script then exits with status 2: skipped for want of data, not failed.
    """
    for path in paths:
        if not path.exists():
            print(f"benchmark skipped: {path} not found (pass --eval-dir)", file=sys.stderr)
            return True
    return False


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of a JSON Lines file in order, blank lines skipped."""
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def question_texts(path: Path, passage_ids: Collection[str] | None = None) -> list[str]:
    """The ``question`` of each row of ``path``; only rows about ``passage_ids`` if given."""
    rows = read_jsonl(path)
    return [r["question"] for r in rows if passage_ids is None or r["passage_id"] in passage_ids]


def write_passages(rows: Iterable[dict[str, Any]], folder: Path) -> list[Path]:
    """Each passage row as ``folder/<passage_id>.txt`` (its text, UTF-8): seeds to index."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for row in rows:
        path = folder / f"{row['passage_id']}.txt"
        path.write_bytes(row["text"].encode("utf-8"))
        paths.append(path)
    return paths


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """``work()`` and the wall seconds it took."""
    started = time.perf_counter()
    return work(), time.perf_counter() - started


@dataclass(frozen=True)
class Child:
    """What `run_child` measured of one fresh process."""

    seconds: float  # wall time from start to exit
    out: str  # its standard output, stripped
    peak_mb: float  # its peak resident memory (VmHWM)


# Prepended to the child's code: at exit, as the last line of stdout, its own peak RSS in kB.
_PEAK_AT_EXIT = (
    "import atexit as _atexit\n"
    "_atexit.register(lambda: print(next(x for x in open('/proc/self/status') "
    "if x.startswith('VmHWM')).split()[1]))\n"
)


def run_child(code: str, *args: str) -> Child:
    """Run ``python -c code args...`` in a fresh process, from the repository root.

    The child reads its own peak (VmHWM in /proc/self/status, so Linux only) as it exits:
    the ``ru_maxrss`` that ``wait4`` reports would include this process's RSS at the fork.
    Raises RuntimeError with the end of the child's stderr when it fails.
    """
    argv = [sys.executable, "-c", _PEAK_AT_EXIT + code, *args]
    done, seconds = timed(lambda: subprocess.run(argv, capture_output=True, text=True, cwd=REPO))
    if done.returncode:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    out, _, peak_kb = done.stdout.rstrip("\n").rpartition("\n")
    return Child(seconds, out.strip(), int(peak_kb) / 1024)


def add_output_options(parser: argparse.ArgumentParser, section: str) -> None:
    """``--section``, ``--results`` and ``--no-write``: which section of which Markdown file
    a run rewrites (default: ``section`` of benchmarks/RESULTS.md), or print only."""
    parser.add_argument("--section", default=section, help=f"default: {section!r}")
    parser.add_argument("--results", type=Path, default=RESULTS, help="default: RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="print only, write nothing")


def publish(body: str, args: argparse.Namespace) -> None:
    """Make ``body`` the ``args.section`` of ``args.results``, unless ``args.no_write``."""
    if not args.no_write:
        write_section(args.section, body, args.results)
        print(f"written to {args.results}, section {args.section!r}", file=sys.stderr)


def command_line(argv: Sequence[str] | None = None) -> str:
    """How to rerun this script (``sys.argv`` by default), without `REMARKS` options.

    Example:
        >>> command_line(["/x/benchmarks/perf.py", "--section", "A b", "--load-note", "busy"])
        ".venv/bin/python -m benchmarks.perf --section 'A b'"
    """
    argv = sys.argv if argv is None else argv
    kept: list[str] = []
    rest = iter(argv[1:])
    for arg in rest:
        if arg in REMARKS:
            next(rest, None)  # and its value
        elif arg.split("=", 1)[0] not in REMARKS:
            kept.append(arg)
    return shlex.join([".venv/bin/python", "-m", f"benchmarks.{Path(argv[0]).stem}", *kept])


def stamp(tabled_from: str | None = None) -> str:
    """The provenance lines every section starts with: when, where, and how to rerun it;
    for a table of earlier measurements, the files it was ``tabled_from`` instead."""
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    rerun = f"Reproduce: `{command_line()}`\n"
    if tabled_from:
        return f"Tabled {when} from {tabled_from}, measured where each row says.\n{rerun}"
    where = (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )
    return f"Measured {when} on {where}.\n{rerun}"


def replace_section(text: str, title: str, body: str) -> str:
    r"""``text`` with its ``## title`` section replaced by ``body``, or appended if absent.

    Example:
        >>> replace_section("# R\n\n## A\n\nold\n\n## B\n\nkept\n", "A", "new")
        '# R\n\n## A\n\nnew\n\n## B\n\nkept\n'
        >>> replace_section("# R\n", "C", "body\n")
        '# R\n\n## C\n\nbody\n'
    """
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    return text.rstrip() + "\n\n" + section


def write_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Rewrite the ``## title`` section of ``path`` (created if missing), nothing else."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    path.write_text(replace_section(text, title, body), encoding="utf-8")
