"""xcloud's exception types.

``ParameterError`` and ``IntegrityError`` are raised by the native kernel and
are subclasses of :class:`ValueError`, so ``except ValueError`` catches them.
"""

from __future__ import annotations

from xcloud._native import IntegrityError, ParameterError

__all__ = ["IntegrityError", "ParameterError"]
