"""What a data check found: the report (`ValidationReport`) and the error that lists every problem
(`DataValidationError`). Its own module so the check (validate.py) and its cache (check_cache.py) both read it
without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.data.readers.base import Entry
from trainer.data.sample import DataError

SKIP_HINT = "use --skip-bad to train without these samples"


class DataValidationError(DataError):
    """Everything wrong with a dataset; `str()` is the multi-line report, `.problems` the individual errors."""

    def __init__(self, root: str, problems: list[DataError], hint: bool = True, headline: str = ""):
        self.problems = list(problems)
        report = "\n".join([(headline or summary_line(self.problems, f" in {root}")) + ":",
                            *(f"  {p}" for p in self.problems), *([SKIP_HINT] if hint else [])])
        super().__init__(root, report)
        self.args = (report,)

    def __str__(self) -> str:
        return self.problem


@dataclass
class ValidationReport:
    root: str
    format: str = ""
    class_names: list[str] = field(default_factory=list)
    problems: list[DataError] = field(default_factory=list)
    good: list[Entry] = field(default_factory=list)  # entries that decoded cleanly, in dataset order
    n_images: int = 0
    n_instances: int = 0
    normalization: str = "none"
    structural: bool = False  # the dataset could not even be listed: skipping samples cannot help

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            return summary_line(self.problems)
        return f"{_count(self.n_images, 'image')}, {_count(self.n_instances, 'instance')}, " \
               f"{_count(len(self.class_names), 'class', 'classes')}: OK"

    def raise_unless_usable(self, listed: bool, skip_bad: bool, nothing_left: str) -> None:
        """DataValidationError when the data could not be listed, has problems (unless `skip_bad`), or has nothing
        left to train on (`nothing_left`: that error's headline)."""
        if not listed:
            raise DataValidationError(self.root, self.problems, hint=False)
        if self.problems and not skip_bad:
            raise DataValidationError(self.root, self.problems)
        if not self.good:
            raise DataValidationError(self.root, self.problems, hint=False, headline=nothing_left)


def summary_line(problems: list[DataError], where: str = "") -> str:
    return f"{_count(len(problems), 'problem')} in {_count(len({p.path for p in problems}), 'file')}{where}"


def _count(n: int, singular: str, plural: str = "") -> str:
    return f"{n} {singular if n == 1 else plural or singular + 's'}"
