from collections.abc import Callable
from typing import Any

from conftest import Traced, parent_id


def test_chain_of_thought_is_one_trace(traced: Callable[..., Traced], lm: Any) -> None:
    import dspy

    t = traced()
    dspy.ChainOfThought("question -> answer")(question="hi")
    (llm,) = t.named("chat gpt-4o-mini")
    (cot,) = t.named("ChainOfThought")
    (predict,) = t.named("Predict")
    assert parent_id(llm) == predict.context.span_id
    assert parent_id(predict) == cot.context.span_id
    assert parent_id(cot) is None
