"""The streaming engine: :class:`Streamer` (feed/flush/reset/latency) and its offline helper."""

from .streamer import CEILING_DBFS, Streamer, process

__all__ = ["Streamer", "process", "CEILING_DBFS"]
