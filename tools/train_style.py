"""Train a feed-forward style net: the same command as ``rtstyle train`` (see its --help).

    python tools/train_style.py --style organ=~/.cache/rtstyle/corpus/styles/organ.flac \
        --corpus ~/.cache/rtstyle/corpus -o models/organ
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import rtstyle  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rtstyle.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
