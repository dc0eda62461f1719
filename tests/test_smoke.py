from collections.abc import Callable
from typing import Any

from conftest import Traced


def test_chain_of_thought_is_one_trace(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    t = traced()
    dspy.ChainOfThought("question -> answer")(question="hi")
    (llm,) = t.named("chat gpt-4o-mini")
    (cot,) = t.named("ChainOfThought")
    (predict,) = t.named("Predict")
    assert llm.parent is not None and llm.parent.span_id == predict.context.span_id
    assert predict.parent is not None and predict.parent.span_id == cot.context.span_id
    assert cot.parent is None
