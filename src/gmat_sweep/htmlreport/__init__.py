"""A sweep in HTML: the notebook card (``Sweep._repr_html_``) and the self-contained report file."""

from .card import card
from .facts import LAYOUTS
from .page import report

__all__ = ["LAYOUTS", "card", "report"]
