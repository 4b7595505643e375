"""Every log line is bounded, whatever a request carried (a 1 MB argument, a long traceback)."""

from __future__ import annotations

import logging

from renkei.platform.log_format import MAX_LINE, BoundedFormatter


def _console_formatter() -> logging.Formatter:
    [handler] = [
        h for h in logging.getLogger().handlers if isinstance(h.formatter, BoundedFormatter)
    ]
    return handler.formatter


def test_the_configured_console_bounds_a_megabyte_message():
    record = logging.LogRecord(
        "renkei.x", logging.WARNING, __file__, 1, "refused %s", ("9" * 1_000_000,), None
    )
    line = _console_formatter().format(record)
    assert "\n" not in line and len(line) < MAX_LINE + 50
    assert line.endswith("characters cut]")


def test_each_line_of_a_traceback_is_bounded():
    try:
        raise ValueError("x" * 100_000)
    except ValueError as e:
        record = logging.LogRecord(
            "renkei.x", logging.ERROR, __file__, 1, "failed", (), (type(e), e, e.__traceback__)
        )
    lines = _console_formatter().format(record).split("\n")
    assert len(lines) > 2 and all(len(line) < MAX_LINE + 50 for line in lines)
    assert any(line.startswith("ValueError: xxx") for line in lines)
