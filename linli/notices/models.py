"""Tables of the notices domain."""

from __future__ import annotations
