"""Asterisk-side tools built on pyst2: the classic ``ccserver-agi`` entry point, and reading ``.conf`` files
(``lint`` against ccserver's contract, ``import_queues`` into the database).

CLI wiring (the lead's ``ccserver/cli.py``): ``ccserver asterisk lint FILE…`` → ``lint_main(paths)``;
``ccserver asterisk import-queues queues.conf`` → ``import_queues_main(path, config.database_url)``.
"""

from __future__ import annotations

from ccserver.asterisk.conf import Problem, parse_conf
from ccserver.asterisk.lint import lint, lint_main
from ccserver.asterisk.queues_import import import_queues, import_queues_main

__all__ = ["Problem", "import_queues", "import_queues_main", "lint", "lint_main", "parse_conf"]
