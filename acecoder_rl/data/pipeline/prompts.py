"""The prompts of AceCoder's data pipeline, as its code at TIGER-AI-Lab/AceCoder@e37ef2a words them.

The wording is AceCoder's (MIT licence, Copyright (c) 2025 wenhu chen) so that data made here matches
AceCode-87K and AceCodePair-300K: the test-synthesis prompt of
``data/training_dataset/create_test_case_and_prompt.py`` and the solution instruction of
``data/training_dataset/inference_generated_prompts.py`` (question and tests in a docstring, in a code
block). Two differences, both on purpose:

* AceCoder opened the assistant's turn with "Below is a Python script with a self-contained function that
  solves the problem and passes corresponding tests:\\n```python" and let the model continue it. A chat
  endpoint cannot be made to continue a turn portably, so the model answers the instruction on its own;
  the reward engine takes the code from the reply's code block either way.
* AceCoder's reward-model pairs put one more blank line before the closing fence than its inference
  prompt did; both are :func:`solution_instruction` here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SYNTHESIS_SYSTEM = "You are an AI assistant that helps people with python coding tasks."

_SYNTHESIS_TASK = """You are the latest and best bot aimed at transforming some code snippet into a leetcode style question. {given} Please complete the following for me:
1. Come up with a leetcode style question which consists of a well-defined problem. The generated question should meet the following criteria:
    a. The question is clear and understandable, with enough details to describe what the input and output are.
    b. The question should be solvable by only implementing 1 function instead of multiple functions or a class. Therefore, please avoid questions which require complicated pipelines.
    c. The question itself should not require any access to external resource or database.
    d. Feel free to use part of the original question if necessary. Moreover, please do not ask for runtime and space complexity analysis or any test cases in your response. 
2. Based on the modified question that you generated in part 1, you need to create around 20 test cases for this modified question. Each test case should be independent assert clauses. The parameters and expected output of each test case should all be constants, **without accessing any external resources**.
"""  # noqa: E501 (AceCoder's lines, kept whole)

_SYNTHESIS_FORMAT = """
Now give your modified question and generated test cases in the following json format: 
{"question": ..., "tests":["assert ...", "assert ..."]}.
"""

# What the bot is given: AceCoder's two cases, and a question without a program (this package's own).
_GIVEN_BOTH = "You will be provided with a prompt for writing code, along with a reference program that answers the question."  # noqa: E501
_GIVEN_PROGRAM = "You will be provided with a reference program."
_GIVEN_QUESTION = "You will be provided with a prompt for writing code."


def synthesis_messages(question: str | None, program: str | None) -> list[dict[str, str]]:
    """The chat that asks for a one-function rewrite of a seed and ~20 assert tests, as JSON.

    A seed has a question, a program, or both (AceCoder's seeds always had a program)."""
    if not question and not program:
        raise ValueError("a seed needs a question or a program")
    given = _GIVEN_BOTH if question and program else _GIVEN_PROGRAM if program else _GIVEN_QUESTION
    parts = [_SYNTHESIS_TASK.format(given=given)]
    if question:
        parts.append(f"\nHere is the original question:\n{question}\n")
    if program:
        reference = "the reference program that answers the question" if question else "the reference program"
        parts.append(f"\nHere is {reference}:\n```python\n{program}\n```\n")
    parts.append(_SYNTHESIS_FORMAT)
    return [{"role": "system", "content": SYNTHESIS_SYSTEM}, {"role": "user", "content": "".join(parts)}]


def solution_chat(row: Mapping[str, Any], tests_shown: int) -> list[dict[str, str]]:
    """The one-turn chat that asks for a solution of an AceCode row, showing its first ``tests_shown`` tests
    (the prompt of the samples, of the reference solution and of the reward-model pairs)."""
    return [{"role": "user", "content": solution_instruction(row["question"], row["test_cases"][:tests_shown])}]


def solution_instruction(question: str, tests: Sequence[str]) -> str:
    """AceCoder's request for a solution: the question and the tests shown (its sampling showed the first
    2, its reward-model pairs the first 1) in a docstring inside a code block."""
    shown = "".join(f"{test.strip()}\n" for test in tests)
    return (
        "Please provide a self-contained Python script that solves the following problem in a markdown code "
        f'block:\n```\n"""\n{question}\n{shown}"""\n```\n'
    )
