"""Run OpenRLHF 0.11.2's own ``train_ppo_ray`` argument handling on argument lists, without training.

Usage: ``python openrlhf_parser_check.py CASES.json RESULTS.json`` where CASES.json is
``{"case id": [arg, ...]}`` (the arguments after ``-m openrlhf.cli.train_ppo_ray``). RESULTS.json gets
``{"case id": {"ok": bool, "error": str}}``.

``train_ppo_ray`` builds its parser inside ``if __name__ == "__main__":``, parses, checks the combination
(its asserts) and calls ``train(args)``. This script executes that very module source as ``__main__`` with
one change made on its syntax tree: the final ``train(args)`` call becomes a no-op. So every flag goes
through OpenRLHF's parser (an unknown flag exits 2) and every OpenRLHF-side check runs. argparse also
accepts unambiguous prefixes of flag names, which would hide a renamed flag; so each ``--flag`` must in
addition be an exact option string of the parser.

The module imports vLLM and flash-attn at the top, which cannot be installed without CUDA; when they are
missing, small stand-ins (only the names imported at module level) are put first on ``sys.path`` from a
temporary directory. They exist only in this process.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.metadata
import importlib.util
import io
import json
import sys
import tempfile
from pathlib import Path

MODULE = "openrlhf.cli.train_ppo_ray"

STUBS = {
    "vllm/__init__.py": "class SamplingParams:\n    pass\n",
    "vllm/inputs.py": "class TokensPrompt(dict):\n    pass\n",
    "vllm/utils.py": "def random_uuid():\n    return '0'\n",
    "flash_attn/__init__.py": "",
    "flash_attn/bert_padding.py": "index_first_axis = pad_input = rearrange = unpad_input = None\n",
    "flash_attn/utils/__init__.py": "",
    "flash_attn/utils/distributed.py": "all_gather = None\n",
}


def install_stubs(root: Path) -> list[str]:
    """Write stand-ins for the CUDA-only packages that are not installed; return their names."""
    stubbed = []
    for package in sorted({name.split("/")[0] for name in STUBS}):
        if importlib.util.find_spec(package) is not None:
            continue
        stubbed.append(package)
        for name, text in STUBS.items():
            if name.startswith(package + "/"):
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_text(text)
    sys.path.insert(0, str(root))
    return stubbed


class _Captured(Exception):
    """Raised in place of ``train(args)``: parsing and OpenRLHF's checks are done."""


def _capture(args: object) -> None:
    raise _Captured()


def compile_without_training() -> object:
    spec = importlib.util.find_spec(MODULE)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{MODULE} is not installed")
    tree = ast.parse(Path(spec.origin).read_text(), filename=spec.origin)
    replaced = 0
    for node in ast.walk(tree):
        if (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and isinstance(node.value.func, ast.Name) and node.value.func.id == "train"):
            node.value.func = ast.Name(id="_acecoder_capture", ctx=ast.Load())
            replaced += 1
    if replaced != 1:
        raise SystemExit(f"{spec.origin}: expected one train(args) call, found {replaced}: "
                         "the module changed shape, update this checker")
    return compile(ast.fix_missing_locations(tree), spec.origin, "exec")


def check(code: object, argv: list[str]) -> dict:
    namespace = {"__name__": "__main__", "_acecoder_capture": _capture}
    saved_argv, err, out = sys.argv, io.StringIO(), io.StringIO()
    sys.argv = ["train_ppo_ray", *argv]
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            exec(code, namespace)  # noqa: S102 - OpenRLHF's own module source
        return {"ok": False, "error": "train(args) was never reached"}
    except _Captured:
        pass
    except SystemExit as exc:
        last = (err.getvalue().strip().splitlines() or ["(no message)"])[-1]
        return {"ok": False, "error": f"argparse exit {exc.code}: {last}"}
    except AssertionError as exc:
        return {"ok": False, "error": f"OpenRLHF check failed: {exc}"}
    finally:
        sys.argv = saved_argv
    parser: argparse.ArgumentParser = namespace["parser"]
    inexact = [a for a in argv if a.startswith("--") and a not in parser._option_string_actions]
    if inexact:
        return {"ok": False, "error": f"not exact OpenRLHF flag names (argparse took them as prefixes): {inexact}"}
    return {"ok": True, "error": ""}


def main() -> None:
    cases_path, results_path = Path(sys.argv[1]), Path(sys.argv[2])
    cases = json.loads(cases_path.read_text())
    with tempfile.TemporaryDirectory(prefix="openrlhf-stubs-") as tmp:
        stubbed = install_stubs(Path(tmp))
        code = compile_without_training()
        results = {case: check(code, argv) for case, argv in cases.items()}
    version = importlib.metadata.version("openrlhf")
    results_path.write_text(json.dumps({"openrlhf": version, "stubbed": stubbed, "results": results}))


if __name__ == "__main__":
    main()
