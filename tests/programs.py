"""Small DSPy programs the tests share."""

from __future__ import annotations

from typing import Any

import dspy


class QA(dspy.Module):  # type: ignore[misc]  # dspy ships no type information
    """A ChainOfThought (``think``), then a Predict (``check``) on its answer."""

    def __init__(self) -> None:
        super().__init__()
        self.think = dspy.ChainOfThought("question -> answer")
        self.check = dspy.Predict("question, answer -> verdict")

    def forward(self, question: str) -> Any:
        answer = self.think(question=question).answer
        return self.check(question=question, answer=answer)

    async def aforward(self, question: str) -> Any:
        answer = (await self.think.acall(question=question)).answer
        return await self.check.acall(question=question, answer=answer)
