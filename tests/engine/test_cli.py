"""The command line: each area's module declares the commands it adds (the CLI builds only
the parser a command needs), and every command is reachable with and without global options."""

from __future__ import annotations

import argparse

import pytest

from engine import cli


def registered(module) -> set[str]:
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    return set(parser._subparsers._group_actions[0].choices)


@pytest.mark.parametrize("module", cli.command_modules(), ids=lambda m: m.__name__)
def test_each_module_declares_exactly_the_commands_it_registers(module):
    assert set(module.COMMANDS) == registered(module)


def test_no_command_is_owned_twice():
    names = [name for module in cli.command_modules() for name in module.COMMANDS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("argv, command", [
    (["run", "--rm", "img"], "run"),
    (["--root", "/r", "--run-root", "/x", "ps", "-a"], "ps"),
    (["--root=/r", "volume", "ls"], "volume"),
    (["-h"], None),
    ([], None),
])
def test_the_command_is_found_after_global_options(argv, command):
    assert cli.command_in(argv) == command


def test_help_lists_every_command_and_unknown_ones_are_refused(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for module in cli.command_modules():
        for name in module.COMMANDS:
            assert name in out
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_a_command_parses_with_only_its_module(capsys):
    parser = cli.build_parser("volume")
    args = parser.parse_args(["volume", "ls"])
    assert args.handler is not None
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "img"])  # not built: that module was not asked for


@pytest.mark.parametrize("argv, front", [
    (["--root", "/r", "--run-root", "/x", "ps"], ("/x", "ps")),
    (["--run-root=/x", "run", "--run-root", "img"], ("/x", "run")),  # after the command: run's own
    (["--root", "/r", "images"], (None, "images")),
])
def test_the_client_reads_the_run_root_where_the_cli_does(argv, front):
    from engine.supervisor import cliclient

    assert cliclient._front(argv) == front
