"""A key only one backend reads is refused by the other, naming the key and the file that set it, instead of
being ignored: OpenRLHF's layout and paths in a local run, the local section in an OpenRLHF run."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from acecoder_rl.errors import AcecoderError
from acecoder_rl.train.config import RunConfig, load_run_config

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = yaml.safe_load((REPO / "configs" / "quickstart.yaml").read_text())
OPENRLHF = {"name": "o", "model": {"pretrain": "m"}, "data": {"path": "out/train.jsonl"}}
# A value to set each marked key to (its default where that is not null: set at its default still counts).
SAMPLE = {"reward.plugin": "my_reward.py", "data.prepare": "--dataset sample -o out",
          "logging.tensorboard_dir": "tb", "cluster": {"address": "http://head:8265"},
          "resources": {"nodes": 1}, "local": {"device": "cpu"}}


def marked_keys(model: type[BaseModel] = RunConfig, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Every key of the schema that names the backends reading it, with them."""
    out = []
    for name, field in model.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "backends" in extra:
            out.append((prefix + name, extra["backends"]))
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out += marked_keys(field.annotation, prefix + name + ".")
    return out


def setting(key: str) -> tuple[dict, str]:
    """A config fragment that sets ``key``, and the key the error names (a section's first key set)."""
    path = key.split(".")
    field = RunConfig
    for part in path:
        info = field.model_fields[part]
        field = info.annotation
    value = SAMPLE.get(key, info.default)
    named = key + "." + next(iter(value)) if isinstance(value, dict) else key
    for part in reversed(path):
        value = {part: value}
    return value, named


def merged(base: dict, fragment: dict) -> dict:
    out = copy.deepcopy(base)
    for section, values in fragment.items():
        if isinstance(values, dict) and isinstance(out.get(section), dict):
            out[section] = {**out[section], **values}
        else:
            out[section] = values
    return out


def refusal(tmp_path: Path, data: dict) -> str:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(AcecoderError) as info:
        load_run_config(path)
    return str(info.value)


def test_the_schema_marks_what_only_one_backend_reads():
    keys = dict(marked_keys())
    for key in ("resources", "cluster", "reward.plugin", "logging.tensorboard_dir", "data.ship", "data.prepare",
                "checkpoints.save_path", "checkpoints.output_dir", "algorithm.micro_rollout_batch_size"):
        assert keys[key] == ["openrlhf"], key
    assert keys["local"] == ["local"]
    assert "checkpoints.save_steps" not in keys and "logging.wandb" not in keys  # both backends read them


@pytest.mark.parametrize("key", [k for k, backends in marked_keys() if "local" not in backends])
def test_local_refuses_openrlhf_keys(tmp_path, key):
    fragment, named = setting(key)
    message = refusal(tmp_path, merged(QUICKSTART, fragment))
    assert message.startswith(f"{tmp_path / 'run.yaml'}: {named}: only used with backend: openrlhf "
                              "(backend: local does not read it): remove it"), message


@pytest.mark.parametrize("key", [k for k, backends in marked_keys() if "openrlhf" not in backends])
def test_openrlhf_refuses_local_keys(tmp_path, key):
    fragment, named = setting(key)
    message = refusal(tmp_path, merged(OPENRLHF, fragment))
    assert message.startswith(f"{tmp_path / 'run.yaml'}: {named}: only used with backend: local "
                              "(backend: openrlhf does not read it): remove it"), message


def test_the_error_names_the_base_file_that_set_the_key(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(merged(QUICKSTART, {"resources": {"gpus_per_node": 4}})))
    (tmp_path / "run.yaml").write_text("extends: base.yaml\nname: mine\n")
    with pytest.raises(AcecoderError) as info:
        load_run_config(tmp_path / "run.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'run.yaml'} (key set in {tmp_path / 'base.yaml'}): "
                                      "resources.gpus_per_node: only used with backend: openrlhf")


def test_null_unsets_a_key_instead_of_setting_it(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(merged(QUICKSTART, {"logging": {"tensorboard_dir": "tb"}})))
    (tmp_path / "run.yaml").write_text("extends: base.yaml\nlogging: {tensorboard_dir: null}\n")
    assert load_run_config(tmp_path / "run.yaml").logging.tensorboard_dir is None


def test_keys_both_backends_read_are_accepted_by_both():
    both = {"checkpoints": {"save_steps": 5, "max_num": 2}, "logging": {"logging_steps": 2}}
    assert RunConfig.model_validate(merged(QUICKSTART, both)).checkpoints.save_steps == 5
    assert RunConfig.model_validate(merged(OPENRLHF, both)).logging.logging_steps == 2
