"""Getting spans out safely: OTLP exporters built from validated settings, loss counted, exit bounded.

- :mod:`~dspy_otel.export.otlp` builds the exporters that ``OTEL_TRACES_EXPORTER`` names from the
  settings table, so a bad standard variable is named and replaced instead of raising;
- :mod:`~dspy_otel.export.reporting` counts what was exported and what failed
  (:func:`dspy_otel.stats`) and says so in one warning line per minute instead of one per batch;
- :mod:`~dspy_otel.export.queue` is the batch processor that counts spans dropped on a full queue.
"""
