"""The house argparse classes every entry point uses: a leaf, importing nothing of paradigms,
so that any module of `shared/` may build its command line on them without an import circle."""

from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `prog: error: MESSAGE (see --help)`, no usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` after every flag that has a default and does not name it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or "default" in text or action.default is argparse.SUPPRESS:
            return text
        if isinstance(action.default, bool):
            return text
        return f"{text} (default: %(default)s)".lstrip()
