"""`python -m facevlm.ui ...` is `facevlm ui ...` (errors a user can fix print one line, exit code 1)."""

from facevlm.lazycli import run
from facevlm.ui.cli import ui

if __name__ == "__main__":
    run(ui, "facevlm ui")
