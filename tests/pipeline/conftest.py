"""Fixtures for the data-pipeline tests: seeds from the bundled MBPP+ snapshot, and a real OpenAI-compatible
HTTP server on loopback whose answers each test scripts.

Seeds: seven MBPP+ problems (evalplus, Apache-2.0; MBPP, CC-BY-4.0; see
``acecoder_rl/data/resources/mbppplus_dev/README.md``), each its task text and canonical solution. The
"model" behind the server is this file: for each seed it answers what a test needs (good and wrong tests, a
broken reply, a refusal), and the expected values of its good tests are computed by running the canonical
solution here, in the test process (trusted, shipped code).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from acecoder_rl.data.bundled import MBPPPLUS, mbppplus_description, read_jsonl


@pytest.fixture(autouse=True)
def _offline(hf_offline) -> None:
    """Apply the shared ``hf_offline`` fixture to every test here."""


# ------------------------------------------------------------------------------------------ the fake endpoint
@dataclass
class Answer:
    """What the server sends back: a status, headers, and a JSON body (or raw bytes), after ``delay`` s."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def chat_answer(texts: list[str]) -> Answer:
    return Answer(200, {
        "id": "chatcmpl-test", "object": "chat.completion",
        "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    for i, text in enumerate(texts)],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5 * len(texts)},
    })


@dataclass
class FakeEndpoint:
    """``url`` is the base URL (``.../v1``); ``respond(request)`` answers each POST; ``requests`` records them
    (``body``, ``headers``)."""

    url: str
    requests: list[dict[str, Any]]
    respond: Callable[[dict[str, Any]], Answer] = lambda request: Answer(500, {"error": "no script"})


@pytest.fixture
def endpoint() -> Iterator[FakeEndpoint]:
    lock = threading.Lock()
    fake = FakeEndpoint(url="", requests=[])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", 0))
            request = {"path": self.path, "headers": dict(self.headers),
                       "body": json.loads(self.rfile.read(length))}
            with lock:
                fake.requests.append(request)
            answer = fake.respond(request)
            time.sleep(answer.delay)
            payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(payload)
            except OSError:  # the client gave up waiting (a timeout test)
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -------------------------------------------------------------------------------------------------- the seeds
@dataclass(frozen=True)
class Task:
    """One MBPP+ problem, the inputs its good tests use, and the wrong expected values its bad tests claim."""

    task_id: str
    inputs: tuple[Any, ...]
    wrong: tuple[tuple[Any, Any], ...] = ()

    @property
    def problem(self) -> dict[str, Any]:
        return _MBPP[self.task_id]

    @property
    def name(self) -> str:
        return self.problem["entry_point"]

    def good_tests(self) -> list[str]:
        namespace: dict[str, Any] = {}
        exec(self.problem["canonical_solution"], namespace)  # the benchmark's own solution, trusted
        solve = namespace[self.name]
        return [f"assert {self.name}({value!r}) == {solve(value)!r}" for value in self.inputs]

    def bad_tests(self) -> list[str]:
        return [f"assert {self.name}({value!r}) == {claimed!r}" for value, claimed in self.wrong]


_MBPP = {problem["task_id"]: problem for problem in read_jsonl(MBPPPLUS)}

#: The seeds, by what the fake model does with them (the test of each step says what it expects).
TASKS = {
    "kept": Task("Mbpp/17", (1, 2, 3, 4, 5, 6), ((2, 9), (5, 21))),  # square_perimeter: 6 good, 2 wrong
    "fenced": Task("Mbpp/77", (0, 11, 12, 22), ((1, True), (33, False), (5, True))),  # is_Diff: 4 good
    "not_json": Task("Mbpp/79", ()),  # word_len
    "no_tests": Task("Mbpp/8", ()),  # square_nums
    "retried": Task("Mbpp/59", (1, 2, 3), ((4, 0), (5, 0), (6, 0), (7, 0), (8, 0))),  # is_octagonal: 3 good
    "refused": Task("Mbpp/66", ()),  # pos_count
    "kept_too": Task("Mbpp/80", (1, 2, 3, 4, 5, 6, 7)),  # tetrahedral_number: 7 good
}


def seed_rows() -> list[dict[str, Any]]:
    return [{"id": task.task_id, "source": "mbppplus", "question": mbppplus_description(task.problem),
             "program": task.problem["canonical_solution"]} for task in TASKS.values()]


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in seed_rows()), encoding="utf-8")
    return path


def task_in(text: str) -> tuple[str, Task]:
    """The task whose function a prompt is about."""
    for key, task in TASKS.items():
        if re.search(rf"\b{re.escape(task.name)}\b", text):
            return key, task
    raise AssertionError(f"no task in prompt {text[:200]!r}")


def synthesis_answers() -> Callable[[dict[str, Any]], Answer]:
    """The fake model's replies to the test-synthesis prompt (one per seed; "retried" is refused with a 429
    once first)."""
    seen_429: set[str] = set()

    def respond(request: dict[str, Any]) -> Answer:
        key, task = task_in(request["body"]["messages"][-1]["content"])
        question = f"Write a function {task.name} that: {mbppplus_description(task.problem)}"
        reply = {"question": question, "tests": task.good_tests() + task.bad_tests()}
        if key == "kept":
            good = task.good_tests()
            reply["tests"] = good[:3] + [f"{task.name}(1)", f"assert {task.name}(", good[0]] + good[3:] + \
                task.bad_tests()
        if key == "fenced":
            return chat_answer([f"Here you go:\n```json\n{json.dumps(reply, indent=2)}\n```"])
        if key == "not_json":
            return chat_answer(["Sure! The question is about word lengths. Tests: assert word_len('ab')"])
        if key == "no_tests":
            return chat_answer([json.dumps({"question": question, "tests": ["print(1)", 5, "assert ("]})])
        if key == "retried" and key not in seen_429:
            seen_429.add(key)
            return Answer(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "0"})
        if key == "refused":
            return Answer(400, {"error": {"message": "This model's maximum context length is 8 tokens"}})
        return chat_answer([json.dumps(reply)])

    return respond


#: The fake model's programs for the label step, one per sample: the right formula while the argument is
#: below the threshold, else 0 (100: always right, 0: never).
SAMPLE_THRESHOLDS = (100, 4, 5, 100, 0)


def sample_program(task: Task, threshold: int) -> str:
    body = task.problem["canonical_solution"].strip()
    name = task.name
    return (f"```python\n{body.replace(f'def {name}(', f'def _right_{name}(', 1)}\n\n"
            f"def {name}(n):\n    return _right_{name}(n) if n < {threshold} else 0\n```")


def label_answers(max_choices: int = 3) -> Callable[[dict[str, Any]], Answer]:
    """Replies to the solution prompt: sample j of a question is ``sample_program(task,
    SAMPLE_THRESHOLDS[j])``.
    The server gives at most ``max_choices`` choices per request (as some do), the client asks again for the
    rest; the samples it already has are counted from ``n``."""
    asked: dict[str, int] = {}

    def respond(request: dict[str, Any]) -> Answer:
        _, task = task_in(request["body"]["messages"][-1]["content"])
        n = request["body"]["n"]
        start = asked.get(task.name, 0)
        count = min(n, max_choices)
        asked[task.name] = (start + count) % len(SAMPLE_THRESHOLDS)
        return chat_answer([sample_program(task, SAMPLE_THRESHOLDS[(start + j) % len(SAMPLE_THRESHOLDS)])
                            for j in range(count)])

    return respond


def read_jsonl_file(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """This file's helpers for the tests (with importlib imports a conftest is not importable by name)."""
    return SimpleNamespace(TASKS=TASKS, Answer=Answer, chat_answer=chat_answer, seed_rows=seed_rows,
                           synthesis_answers=synthesis_answers, label_answers=label_answers,
                           sample_program=sample_program, read_jsonl=read_jsonl_file)
