"""The freeze plan on a meter without the high-precision energy (0010 attribute 4): a failure that names the
object, not a crash."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from drivers.dlt698 import DarRefused
from testplans.dlt698 import test_freeze


class _Refusing:
    def get(self, attribute: Any) -> Any:
        raise DarRefused(f"{attribute}: refused", 6)


def test_a_meter_without_attribute_4_fails_naming_00100400() -> None:
    position: Any = SimpleNamespace(name="P3")
    link: Any = _Refusing()
    with pytest.raises(pytest.fail.Exception, match=r"P3: the meter refuses 00100400 \(high-precision forward "
                                                    r"active energy, 0010 attribute 4\): DAR 6"):
        test_freeze._read_precise(link, position)
