"""Rule files reloaded without a restart: the alerter checks the files' modification times every
`rules_reload_s`; a change loads them again, and a file that no longer validates is logged (file,
line, field) while the rules loaded before stay in force.
"""

from __future__ import annotations

from pathlib import Path

from extractguard.alerting.rules import RuleFileError, RuleSet, load_rule_files, rule_paths
from extractguard.logs import configure

log = configure("alerter")


class RuleFiles:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._stamps = self._current()
        self.rules = load_rule_files(rule_paths(directory))  # a bad file at start stops the alerter

    def _current(self) -> dict[Path, float]:
        return {path: path.stat().st_mtime for path in rule_paths(self.directory)}

    def reload_if_changed(self) -> RuleSet | None:
        """The new rules when a file changed and loads; None otherwise."""
        stamps = self._current()
        if stamps == self._stamps:
            return None
        self._stamps = stamps
        try:
            self.rules = load_rule_files(sorted(stamps))
        except RuleFileError as error:
            log.error("rule_files_invalid", error=str(error), kept="the rules loaded before")
            return None
        log.info("rule_files_reloaded", stream=len(self.rules.stream), sql=len(self.rules.sql))
        return self.rules
