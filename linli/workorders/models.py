"""Tables of the workorders domain."""

from __future__ import annotations
