"""The merge of a floyd run's flags, floyd.yml and defaults (compat.floyd.floyd_yml)."""

import pytest

from compat.floyd.floyd_yml import (
    FloydArgs,
    Mount,
    command_of,
    data_mounts,
    environment_name,
    instance_type,
    machine_name,
    max_runtime,
    parse_config,
    run_settings,
    task_config,
    yaml_inputs,
)
from core.errors import ValidationFailed

FLOYD_YML = """\
machine: cpu
env: pytorch-2.5
input:
  - destination: input
    source: foo/datasets/yelp-food/1
  - foo/datasets/yelp-food-test/1:test
description: this is a test
max_runtime: 3600
command: python train.py
task:
  evaluate:
    machine: gpu
    command: python evaluate.py
  serve:
    machine: cpu
    mode: serve
"""


def test_without_flags_the_top_level_of_floyd_yml_sets_the_run() -> None:
    run = run_settings(FloydArgs(), FLOYD_YML, None)

    assert run.command == "python train.py"
    assert (run.environment, run.machine) == ("pytorch-2.5", "cpu")
    assert run.description == "this is a test"
    assert run.max_runtime_s == 3600
    assert run.inputs == (
        Mount("foo/datasets/yelp-food/1", "input"),
        Mount("foo/datasets/yelp-food-test/1", "test"),
    )


def test_a_task_overrides_the_top_level_and_keeps_the_rest() -> None:
    run = run_settings(FloydArgs(), FLOYD_YML, "evaluate")

    assert (run.command, run.machine) == ("python evaluate.py", "gpu")
    assert run.environment == "pytorch-2.5"  # from the top level
    assert run.max_runtime_s == 3600


def test_flags_override_the_task_and_the_file() -> None:
    args = FloydArgs(
        command="python other.py", description="flagged", env="tensorflow-2.16",
        instance_type="g2", max_runtime=60, data=(Mount("data-5", "mnist"),),
    )  # fmt: skip

    run = run_settings(args, FLOYD_YML, "evaluate")

    assert run.command == "python other.py"
    assert run.description == "flagged"
    assert (run.environment, run.machine) == ("tensorflow-2.16", "gpu2")
    assert run.max_runtime_s == 60
    assert run.inputs == (Mount("data-5", "mnist"),)


def test_without_floyd_yml_or_flags_ferry_defaults_apply() -> None:
    run = run_settings(FloydArgs(command="echo hi"), None, None)

    assert (run.environment, run.machine, run.max_runtime_s, run.inputs) == ("", "", None, ())


def test_the_template_floyd_init_writes_is_an_empty_config() -> None:
    assert parse_config("# machine: cpu\n#env: tensorflow-1.8\n") == {}


@pytest.mark.parametrize("mode", ["serve", "jupyter"])
def test_serve_and_jupyter_modes_are_refused_from_flags(mode: str) -> None:
    with pytest.raises(
        ValidationFailed, match=f"does not .* through floyd-cli yet \\(--mode {mode}"
    ):
        run_settings(FloydArgs(mode=mode), None, None)


def test_a_task_in_serve_mode_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="does not serve models"):
        run_settings(FloydArgs(), FLOYD_YML, "serve")


def test_the_mode_floyd_cli_sends_by_default_runs_a_job() -> None:
    assert run_settings(FloydArgs(mode="command", command="x"), None, None).command == "x"


def test_an_unknown_task_names_the_tasks_there_are() -> None:
    with pytest.raises(ValidationFailed, match="no task 'train'; its tasks: evaluate, serve"):
        task_config(parse_config(FLOYD_YML), "train")


def test_a_misspelt_key_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationFailed, match="does not know: comand; use machine"):
        parse_config("comand: python train.py\n")


def test_invalid_yaml_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="not valid YAML"):
        parse_config("command: [unclosed\n")


def test_a_yaml_list_at_the_top_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="must be a mapping"):
        parse_config("- a\n- b\n")


@pytest.mark.parametrize("value", ["soon", -5, 0, 30 * 86400 + 1, 1.5, True])
def test_a_bad_max_runtime_is_refused(value: object) -> None:
    with pytest.raises(ValidationFailed, match="max runtime"):
        max_runtime(value, "floyd.yml max_runtime")


def test_a_max_runtime_in_text_is_read_as_seconds() -> None:
    assert max_runtime("120", "x") == 120
    assert max_runtime(None, "x") is None


def test_instance_types_map_to_ferry_machine_types_and_back() -> None:
    assert [machine_name(t) for t in ("c1", "g1", "c2", "g2", "", "a100")] == [
        "cpu", "gpu", "cpu2", "gpu2", "", "a100",
    ]  # fmt: skip
    assert [instance_type(m) for m in ("cpu", "gpu", "cpu2", "gpu2", "a100")] == [
        "c1", "g1", "c2", "g2", "a100",
    ]  # fmt: skip


def test_floyds_default_env_is_ferrys_default() -> None:
    assert environment_name("default") == ""
    assert environment_name("pytorch-2.5") == "pytorch-2.5"


def test_data_ids_keep_their_id_and_lose_the_mounts_slashes() -> None:
    assert data_mounts(["data-5:/mnist", "output-7:prev/"]) == (
        Mount("data-5", "mnist"),
        Mount("output-7", "prev"),
    )


def test_a_data_id_without_a_mount_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="ID:MOUNT"):
        data_mounts(["data-5"])


def test_yaml_inputs_must_be_a_list_of_sources() -> None:
    with pytest.raises(ValidationFailed, match="must be a list"):
        yaml_inputs("foo/datasets/x/1")
    with pytest.raises(ValidationFailed, match="is not SOURCE:MOUNT"):
        yaml_inputs([{"destination": "x"}])


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("floyd run 'python train.py'", "python train.py"),
        (
            "floyd run --gpu --env pytorch-2.5 --message 'a b' --data alice/datasets/m/1:/m "
            "--data x:y 'python train.py --lr 0.1'",
            "python train.py --lr 0.1",
        ),
        ("floyd run --cpu2 --message hi", ""),
        ("floyd run --mode jupyter --no-open", ""),
        ("something else", ""),
    ],
)
def test_the_command_is_read_from_full_command(line: str, command: str) -> None:
    assert command_of(line) == command


def test_a_full_command_that_is_no_shell_line_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="not a shell command line"):
        command_of("floyd run 'unclosed")
