"""Log lines of bounded length: a request can carry a megabyte in one argument, and no line
may carry it on into the log (or personal data with it)."""

from __future__ import annotations

import logging

MAX_LINE = 2000  # characters per physical line (a traceback's lines are each bounded)


class BoundedFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(_bounded(line) for line in super().format(record).split("\n"))


def _bounded(line: str) -> str:
    if len(line) <= MAX_LINE:
        return line
    return f"{line[:MAX_LINE]}…[{len(line) - MAX_LINE} characters cut]"
