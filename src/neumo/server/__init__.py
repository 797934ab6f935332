"""``neumo serve``: a local web page and JSON API for detection and for browsing runs and study verdicts."""

from neumo.server.app import create_app
from neumo.server.limits import Limits

__all__ = ["Limits", "create_app"]
