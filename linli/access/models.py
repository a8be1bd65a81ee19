"""Tables of the access domain."""

from __future__ import annotations
