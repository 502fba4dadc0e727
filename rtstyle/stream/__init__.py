"""The streaming engine: :class:`Streamer` (feed/flush/reset/latency) and its offline helper.

:class:`StreamingStage` is the protocol the Streamer and every stage in it follow.
"""

from .protocol import StreamingStage
from .streamer import CEILING_DBFS, Streamer, process

__all__ = ["Streamer", "process", "CEILING_DBFS", "StreamingStage"]
