"""``python -m adapter`` is ``cdgi``."""

from adapter.cli import main

main()
