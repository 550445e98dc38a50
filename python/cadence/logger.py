"""The package logger. INFO goes to stderr unless CADENCE_LOGGING_LEVEL says otherwise."""

from __future__ import annotations

import logging
import os

_configured = False


def get_logger(name: str = "cadence") -> logging.Logger:
    global _configured
    root = logging.getLogger("cadence")
    if not _configured:
        _configured = True
        if not root.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(levelname)s %(asctime)s %(message)s"))
            root.addHandler(handler)
            root.propagate = False
        root.setLevel(os.environ.get("CADENCE_LOGGING_LEVEL", "INFO").upper())
    return logging.getLogger(name)
