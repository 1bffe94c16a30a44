"""The shared argument checks of :mod:`ptanalytics._checks` (more in test_validate.py)."""

import numpy as np
import pytest

from ptanalytics._checks import check_bool
from ptanalytics.exceptions import ConfigError


@pytest.mark.parametrize("value", [True, False])
def test_check_bool_returns_a_bool(value):
    assert check_bool("overwrite", value) is value


@pytest.mark.parametrize(
    ("value", "shown"), [(1, "1"), (0, "0"), ("yes", "'yes'"), (None, "None"), (np.True_, "")]
)
def test_check_bool_refuses_anything_else(value, shown):
    with pytest.raises(ConfigError, match=rf"^overwrite={shown}.*; allowed: True or False\.$"):
        check_bool("overwrite", value)


def test_check_bool_appends_the_fix():
    with pytest.raises(
        ConfigError, match=r"^flag='no'; allowed: True or False\. Fix: use a bool\.$"
    ):
        check_bool("flag", "no", fix="use a bool")
