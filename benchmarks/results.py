"""Write one named section of benchmarks/RESULTS.md, leaving the other sections alone."""

from __future__ import annotations

import os
import platform
import re
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
HEADER = "# Benchmark results\n\nEvery table below is written by the script named in its section.\n"


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def stamp(command: str) -> str:
    """The provenance lines every section starts with."""
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M %Z')} on {machine()}.\nReproduce: `{command}`\n"
    )


def command_line() -> str:
    """How this script was invoked, for the provenance line."""
    script = Path(sys.argv[0]).as_posix()
    if "benchmarks/" in script:
        script = "benchmarks/" + script.split("benchmarks/", 1)[1]
    return " ".join([".venv/bin/python", script, *sys.argv[1:]])


def write_section(title: str, body: str, path: Path = RESULTS) -> None:
    """Replace (or append) the ``## title`` section of RESULTS.md with ``body``."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    path.write_text(text, encoding="utf-8")
