"""Sampling inside the process: head samplers, the tail sampler and its policies, ``debug()``/``suppress()``.

- :mod:`~dspy_otel.sampling.head` — every ``OTEL_TRACES_SAMPLER`` name, with
  :mod:`~dspy_otel.sampling.rate_limiting` and :mod:`~dspy_otel.sampling.rules`
  (decided when a trace starts);
- :mod:`~dspy_otel.sampling.tail` — the tail-sampling span processor
  (decided when a trace is complete), bounded by
  :mod:`~dspy_otel.sampling._tail_limits` (``TailLimits``, the memory estimate); its policies, one module each, in
  :mod:`~dspy_otel.sampling.policies` (``DSPY_OTEL_TAIL_POLICIES``);
- :mod:`~dspy_otel.sampling._scopes` — ``dspy_otel.debug()`` and ``dspy_otel.suppress()``.

:func:`dspy_otel.configure` wires them from the environment. Head and tail
together export what either keeps: ``OTEL_TRACES_SAMPLER=parentbased_traceidratio``,
``OTEL_TRACES_SAMPLER_ARG=0.1`` and ``DSPY_OTEL_TAIL_POLICIES=errors`` export 10 %
of the traces and every trace with an error, each whole.
"""
