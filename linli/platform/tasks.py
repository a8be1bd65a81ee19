"""The open platform's jobs: webhook dispatch and the retry sweep live in :mod:`.webhooks`.

Imported by the worker (every ``linli/<domain>/tasks.py`` is a job module).
"""

from linli.platform import webhooks

__all__ = ["webhooks"]
