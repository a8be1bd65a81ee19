"""Tables of the votes domain."""

from __future__ import annotations
