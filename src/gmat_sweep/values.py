"""A value written as text, typed the one way gmat-sweep reads them everywhere: on the command line (``--grid``,
``--where``) and in what GMAT reports back (collected values, object fields).

>>> parse_value("7000"), parse_value("0.001"), parse_value("True"), parse_value("Sat")
(7000, 0.001, True, 'Sat')
"""

from __future__ import annotations

from typing import Any


def parse_value(text: str) -> Any:
    """An int, then a float, then ``true``/``false`` in any case as a bool, else the text with outer spaces removed."""
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text
