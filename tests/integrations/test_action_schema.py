"""action.yml and the example workflow are valid for GitHub, checked offline.

check-jsonschema bundles SchemaStore's schemas for GitHub actions and workflows
(``--builtin-schema vendor.github-actions`` / ``vendor.github-workflows``), so this
runs without a network. A broken copy of each file must fail the same check, which
shows the check can fail at all.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
ACTION = REPO_ROOT / "action.yml"
EXAMPLE = REPO_ROOT / "docs" / "examples" / "github-actions-spot-runner.yml"
GUIDE = REPO_ROOT / "docs" / "github-actions.md"


def check(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_action_yml_is_a_valid_action() -> None:
    result = check("vendor.github-actions", ACTION)
    assert result.returncode == 0, result.stdout + result.stderr


def test_example_workflow_is_a_valid_workflow() -> None:
    result = check("vendor.github-workflows", EXAMPLE)
    assert result.returncode == 0, result.stdout + result.stderr


def broken_copy(source: Path, target: Path, old: str, new: str) -> Path:
    """``source`` with one exact line changed (text, not a YAML round trip, which would
    rewrite ``on:`` as ``true:`` and break the file for another reason)."""
    text = source.read_text()
    assert text.count(old) == 1, f"{old!r} is not in {source.name} exactly once"
    target.write_text(text.replace(old, new))
    return target


def test_a_broken_action_fails_the_check(tmp_path: Path) -> None:
    # Neither composite, node nor docker: not an action.
    broken = broken_copy(ACTION, tmp_path / "action.yml", "using: composite", "using: shell")
    result = check("vendor.github-actions", broken)
    assert result.returncode == 1, result.stdout
    assert "Schema validation errors" in result.stdout


def test_a_broken_workflow_fails_the_check(tmp_path: Path) -> None:
    broken = broken_copy(
        EXAMPLE,
        tmp_path / "workflow.yml",
        'runs-on: [self-hosted, "mapt-${{ github.run_id }}"]',
        "runs-on: {labels: 42}",  # a number is not a runner label
    )
    result = check("vendor.github-workflows", broken)
    assert result.returncode == 1, result.stdout
    assert "Schema validation errors" in result.stdout


def test_the_action_has_the_documented_interface() -> None:
    action = load(ACTION)
    assert action["runs"]["using"] == "composite"
    inputs = action["inputs"]
    assert inputs["operation"]["required"] is True
    assert inputs["project-name"]["required"] is True
    assert inputs["os"]["default"] == "rhel"
    assert inputs["spot"]["default"] == "true"
    assert inputs["timeout"]["default"] == "2h"
    # The workflow's GITHUB_TOKEN cannot register runners: no default token.
    assert inputs["github-token"]["default"] == ""
    assert set(action["outputs"]) >= {"host", "username", "region", "runner-name"}
    guide = GUIDE.read_text()
    for name in [*inputs, *action["outputs"]]:
        assert f"`{name}`" in guide, f"docs/github-actions.md does not document {name}"


def test_no_input_is_expanded_inside_a_run_script() -> None:
    """Inputs reach the shell through env:, so a value cannot inject shell code."""
    for step in load(ACTION)["runs"]["steps"]:
        assert not re.search(r"\$\{\{\s*inputs\.", step.get("run", "")), step.get("name")


def test_the_example_runs_on_its_own_runner_and_always_cleans_up() -> None:
    workflow = load(EXAMPLE)
    jobs = workflow["jobs"]
    create = next(s for s in jobs["create-runner"]["steps"] if s.get("id") == "mapt")["with"]
    label = "mapt-${{ github.run_id }}"
    assert label in create["runner-labels"].split(",")
    assert create["operation"] == "create" and create["timeout"]
    assert jobs["tests"]["runs-on"] == ["self-hosted", label]
    assert jobs["destroy-runner"]["if"] == "always()"
    destroy = next(s for s in jobs["destroy-runner"]["steps"] if s.get("uses") == "./")["with"]
    assert destroy["operation"] == "destroy"
    assert destroy["project-name"] == create["project-name"]
    assert destroy["backed-url"] == create["backed-url"]
    assert "secrets." in create["backed-url"]


def test_the_guide_shows_the_example_workflow_as_it_is() -> None:
    assert f"```yaml\n{EXAMPLE.read_text()}```" in GUIDE.read_text()


@pytest.mark.parametrize("path", [ACTION, EXAMPLE])
def test_files_hold_no_secret_literals(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"gh[pousr]_[A-Za-z0-9]{20,}|BEGIN [A-Z ]*PRIVATE KEY", text)
