"""Which files an entry script links into a folder before it starts a process manager.

Weblate's start fills supervisord's include folder at run time (`/run/supervisor.conf.d/`) with
links to the program files its image holds, chosen by the environment:
`find /etc/supervisor/conf.d -type f ! -name 'celery-*.conf' -exec ln -s -t "$DIR" {} +`, then
either `ln -s .../celery-single.conf "$DIR"` or every other `celery-*.conf`, on a
`(( ${CELERY_SINGLE_PROCESS:-0} == 1 ))` test. The folder itself is not in the repository; the
links say which of the repository's program files supervisord reads. A branch whose test is
decided false is left out; a link whose source cannot be expanded (`$WEBLATE_SERVICE.conf`,
set nowhere) links nothing known.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable

from pgslots.deploy.readers.commands import expand, split_words
from pgslots.deploy.readers.envfiles import Env
from pgslots.deploy.readers.scripts import branch_test, logical_lines

_IF = re.compile(r"^(?P<kw>if|elif)\s+(?P<test>.*?)\s*;\s*then\s*$")


def linked_files(text: str, env: Env, listing: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """Folder (as the script writes it, expanded, without a trailing slash) -> the image paths
    linked into it. `listing(folder)` gives the image files under an image folder (for `find`)."""
    out: dict[str, list[str]] = {}
    # per `if`: [this branch runs (None: cannot tell), an earlier branch ran, one could not be told]
    frames: list[list[bool | None]] = []
    for _, raw in logical_lines(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head = _IF.match(line)
        if head and head["kw"] == "if":
            verdict = branch_test(head["test"], env)
            frames.append([verdict, verdict is True, verdict is None])
            continue
        if head and frames:
            verdict = branch_test(head["test"], env)
            earlier, unsure = frames[-1][1], frames[-1][2]
            frames[-1] = [
                False if earlier else verdict,
                earlier or verdict is True,
                unsure or verdict is None,
            ]
            continue
        if line == "else" and frames:
            earlier, unsure = frames[-1][1], frames[-1][2]
            frames[-1] = [False if earlier else (None if unsure else True), True, unsure]
            continue
        if line == "fi" and frames:
            frames.pop()
            continue
        if any(frame[0] is False for frame in frames):
            continue
        words = split_words(line)
        if words[:1] == ["ln"]:
            _ln(words[1:], env, out, lambda path: [path])
        elif words[:1] == ["find"] and "-exec" in words:
            exec_at = words.index("-exec")
            if words[exec_at + 1 : exec_at + 2] == ["ln"]:
                found = _find(words[1:exec_at], env, listing)
                tail = [w for w in words[exec_at + 2 :] if w not in ("+", ";", "\\;")]
                _ln(tail, env, out, _placeholder(found))
    return out


def _placeholder(found: list[str]) -> Callable[[str], list[str]]:
    """`{}` in `find ... -exec ln -s -t DIR {} +` stands for every file find printed."""

    def sources(word: str) -> list[str]:
        return found if word == "{}" else [word]

    return sources


def _ln(
    args: list[str], env: Env, out: dict[str, list[str]], sources_of: Callable[[str], list[str]]
) -> None:
    """`ln -s SRC... DIR` or `ln -s -t DIR SRC...`."""
    target: str | None = None
    operands: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word in ("-t", "--target-directory"):
            target = args[index + 1] if index + 1 < len(args) else None
            index += 2
            continue
        if word.startswith("-"):
            index += 1
            continue
        operands.append(word)
        index += 1
    if target is None and len(operands) >= 2:
        target, operands = operands[-1], operands[:-1]
    folder = expand(target, env).value if target else None
    if not folder:
        return
    for operand in operands:
        for source in sources_of(operand):
            value = expand(source, env).value
            if value:
                out.setdefault(folder.rstrip("/") or "/", []).append(value)


def _find(args: list[str], env: Env, listing: Callable[[str], list[str]]) -> list[str]:
    """`find DIR -type f ! -name 'celery-*.conf' -name '*.conf'`: the files it prints."""
    roots = [w for w in args if not w.startswith(("-", "!")) and "/" in w]
    if len(roots) != 1:
        return []
    root = expand(roots[0], env).value
    if not root:
        return []
    tests: list[tuple[bool, str]] = []
    for index, word in enumerate(args):
        if word == "-name" and index + 1 < len(args):
            tests.append((index > 0 and args[index - 1] == "!", args[index + 1]))
    files = listing(root.rstrip("/"))
    return [
        path
        for path in files
        if all(
            fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern) != negated
            for negated, pattern in tests
        )
    ]
