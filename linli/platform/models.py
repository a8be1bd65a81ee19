"""Tables of the open platform."""

from __future__ import annotations
