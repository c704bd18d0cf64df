"""`python -m facevlm.ui ...` is `facevlm ui ...` (errors a user can fix print one line, exit code 1)."""

import sys

import click

from facevlm.errors import FacevlmError
from facevlm.ui.cli import ui

if __name__ == "__main__":
    try:
        ui.main(prog_name="facevlm ui", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FacevlmError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
