from collections.abc import Callable
from typing import Any

from conftest import Traced, parent_id


def test_chain_of_thought_is_one_trace(traced: Callable[..., Traced], lm: Any) -> None:
    """The ChainOfThought span stands for its inner Predict: the LM span hangs right under it."""
    import dspy

    t = traced()
    cot = dspy.ChainOfThought("question -> answer")
    cot(question="hi")
    (llm,) = t.named("chat gpt-4o-mini")
    (cot_span,) = t.named("ChainOfThought")
    assert t.named("Predict") == []
    assert parent_id(llm) == cot_span.context.span_id
    assert parent_id(cot_span) is None
    cot.predict(question="called on its own")  # outside its ChainOfThought, that Predict has its span
    (predict,) = t.named("Predict")
    assert parent_id(predict) is None
    assert [parent_id(s) for s in t.named("chat gpt-4o-mini")] == [cot_span.context.span_id, predict.context.span_id]
