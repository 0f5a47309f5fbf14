"""The open-model load generator, pytest-free.

- ``schedule.py``: when each request is due;
- ``generator.py``: :class:`~.generator.LoadGenerator`, the thread that sends on schedule;
- ``engines.py``: how one request is sent and its outcome learnt;
- ``records.py`` and ``stats.py``: compact request records and HdrHistogram statistics;
- ``workers.py``: extra load processes, parent side; ``__main__.py``: their child side.
"""
