"""Old names kept for one release after a rename: each use logs one deprecation line.

A flag renamed on the command line keeps its old spelling as a second option of the same
argument (``add_deprecated_alias``): it stores into the new name's destination, says so in
``--help`` and, when used, logs a line naming the new spelling. Renamed keys of files a run
wrote before (``config.yaml``, presets) are read through ``renamed_keys``. Every line is logged
once per process, on the ``gaia.deprecation`` logger at WARNING.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

logger = logging.getLogger("gaia.deprecation")
_SAID: set[str] = set()


def deprecated(old: str, new: str, where: str = "") -> None:
    """Log once: ``old`` is now ``new`` (``where`` says what it was found in)."""
    found = f" (in {where})" if where else ""
    line = (f"deprecated: {old}{found} is now {new}; the old name is read for one more release")
    if line not in _SAID:
        _SAID.add(line)
        logger.warning(line)


def renamed_keys(values: Any, renames: dict[str, str], where: str) -> Any:
    """``values`` with each old key of ``renames`` (old -> new) read as its new key, logging
    one deprecation line per old key found. Both spellings at once is a ``ValueError``."""
    if not isinstance(values, dict):
        return values  # the loader that reads them says what is wrong
    out = dict(values)
    for old, new in renames.items():
        if old in out:
            if new in out:
                raise ValueError(f"{where} has both {old!r} and its new name {new!r}: keep {new!r}")
            deprecated(repr(old), repr(new), where)
            out[new] = out.pop(old)
    return out


class _DeprecatedAlias(argparse.Action):
    """Stores like the new option's action and logs a deprecation line naming it."""

    def __init__(self, option_strings, dest, new_flag: str = "", constant: Any = None,
                 **kwargs) -> None:
        self.new_flag, self.constant = new_flag, constant
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        deprecated(option_string or self.option_strings[0], self.new_flag)
        setattr(namespace, self.dest, self.constant if self.nargs == 0 else values)


def add_deprecated_alias(parser: argparse.ArgumentParser | Any, old_flag: str,
                         new: argparse.Action) -> argparse.Action:
    """``old_flag`` as a deprecated spelling of the option ``new`` (what ``add_argument``
    returned): the same destination, type and choices; ``--help`` names it deprecated."""
    extra: dict[str, Any] = {}
    if new.nargs == 0:  # a switch (store_true and the like)
        extra = {"nargs": 0, "constant": new.const}
    else:
        extra = {"nargs": new.nargs, "type": new.type, "choices": new.choices,
                 "metavar": new.metavar}
    return parser.add_argument(old_flag, dest=new.dest, action=_DeprecatedAlias,
                               new_flag=new.option_strings[0], default=argparse.SUPPRESS,
                               help=f"deprecated alias of {new.option_strings[0]} (kept for "
                                    "one release)", **extra)
