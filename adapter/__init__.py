"""cdgi-adapter: the daemon between the single window, banks, insurers and customs.

Owns configuration, the composition root (``bootstrap``), the bus wiring (``bus``, the only
importer of pika), the message pipeline, the handlers and the ``cdgi`` command. The business
itself lives in ``adapter.domain`` and does no I/O.
"""

__version__ = "0.1.0"
