"""Click groups whose sub-commands are imported on first use, from a name -> "module:attribute" table.

Lives in the lowest layer (it needs only click) so that the top-level `facevlm` command and every
stage's own group (`facevlm data`, `facevlm bench`) build their menus the same way without a stage
importing the top-level `facevlm.cli`. Listing the commands imports nothing, which keeps `facevlm --help`
fast; invoking one imports only its module.
"""

from __future__ import annotations

import importlib
import sys

import click

# name -> ("module:attribute", one-line help shown before the module is imported)
CommandTable = dict[str, tuple[str, str]]
HELP_OPTIONS = {"help_option_names": ["-h", "--help"]}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use from `commands_table`."""

    def __init__(self, *args, commands_table: CommandTable, **kwargs):
        super().__init__(*args, **kwargs)
        self.commands_table = commands_table

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands_table)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands_table:
            return None
        target, short = self.commands_table[name]
        module_name, attr = target.split(":")
        cmd = getattr(importlib.import_module(module_name), attr)
        cmd.short_help = cmd.short_help or short
        return cmd


def lazy_group(name: str, help: str, table: CommandTable) -> click.Group:
    """A stage group whose commands live in several modules (owned by different parts of the stage)."""
    return LazyGroup(name=name, help=help, commands_table=table, context_settings=HELP_OPTIONS)


def run(command: click.Command, prog_name: str, argv: list[str] | None = None) -> None:
    """Run a click command as a program: errors a user can fix print one line (exit 1), click's own usage
    errors keep click's message and code, Ctrl-C and aborts exit 130 without a traceback."""
    from facevlm.errors import FacevlmError

    try:
        command.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FacevlmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
