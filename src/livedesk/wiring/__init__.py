"""The composition root's tables, beside ``app.py``: what the capabilities hand each other
and the transport without importing one another — the Socket.IO event table
(``realtime.py``) and the privacy participants (``privacy.py``). Only ``app.py`` (and tests
that build part of the app) import this package."""
