"""``mapt ... --help`` stays light: no cloud SDK, no Pulumi, no pydantic, for any command.

Start-up time itself is measured by ``benchmarks/cli_startup.py``; what is checked
here is the cause of a slow start that a user notices first: a heavy import on the
way to printing help.
"""

from __future__ import annotations

from typer.testing import CliRunner

from mapt.cli import app
from tests.harness.startup import command_paths, heavy_roots, help_imports

runner = CliRunner()


def test_every_command_is_covered() -> None:
    paths = command_paths(app)
    assert {(), ("aws",), ("aws", "host"), ("aws", "host", "list"), ("setup",)} <= set(paths)
    assert len(paths) >= 10


def test_no_help_imports_a_cloud_sdk_pulumi_or_pydantic() -> None:
    imports = help_imports(command_paths(app))
    heavy = {" ".join(path): heavy_roots(modules) for path, modules in imports.items()}
    assert heavy == {name: [] for name in heavy}


def test_help_imports_no_click_which_is_no_dependency() -> None:
    # typer >= 0.29 vendors its own Click; `import click` fails where only mapt's
    # dependencies are installed.
    imports = help_imports([(), ("aws", "host", "create")])
    for modules in imports.values():
        assert "click" not in {module.split(".")[0] for module in modules}


def test_help_is_plain_text_without_rich_rendering() -> None:
    # Typer's rich panels cost ~0.09 s of imports (rich.markdown, rich.traceback) and
    # draw boxes in CI logs; mapt's help is Click's plain text, for every command.
    rendering = {"typer.rich_utils", "rich.markdown", "rich.traceback"}
    imports = help_imports(command_paths(app))
    loaded = {" ".join(path): sorted(rendering & set(modules)) for path, modules in imports.items()}
    assert loaded == {name: [] for name in loaded}
    for path in [(), ("aws", "host", "create"), ("pool", "lease")]:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0
        assert "Options:" in result.stdout
        assert not set("╭╮╰╯│─") & set(result.stdout)
    # Help text is printed as written: no markup escape shows through.
    assert "s3://BUCKET[/PREFIX]" in runner.invoke(app, ["aws", "host", "list", "--help"]).stdout


def test_options_are_coerced_by_typer_as_before_the_deferral() -> None:
    # Typer builds an option's coercion on its first value now, not at parse time.
    # A flag's value from the environment is still read as a bool by Typer ("1" is
    # true: --debug adds the traceback), and a bad one is still refused in its words.
    bad_url = ["aws", "host", "list", "--backed-url", "bogus://x"]
    result = runner.invoke(app, bad_url, env={"MAPT_DEBUG": "1"})
    assert result.exit_code == 2
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: backend URL 'bogus://x'")
    result = runner.invoke(app, bad_url, env={"MAPT_DEBUG": "maybe"})
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "Error: MAPT_DEBUG=maybe (from the environment): Invalid value for '--debug' "
        "(env var: 'MAPT_DEBUG'): Input should be a valid boolean, unable to interpret "
        "input. Try 'mapt --help'."
    ]
