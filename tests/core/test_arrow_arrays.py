import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serve_app.core.arrow_arrays import int64_array, numbers, short_utf8_array, utf8_array


@settings(deadline=None)  # pa.array imports pandas on its first call
@given(st.lists(st.text()))
def test_utf8_array_equals_arrows_own_conversion(texts: list[str]) -> None:
    try:
        expected = pa.array(texts, pa.large_string())
    except (UnicodeEncodeError, pa.ArrowException):
        with pytest.raises(UnicodeEncodeError):
            utf8_array(texts)
        return
    assert utf8_array(texts).equals(expected)
    assert short_utf8_array(texts).equals(expected.cast(pa.string()))


@given(st.lists(st.integers(-(2**63), 2**63 - 1)), st.integers(0, 5))
def test_int64_arrays_and_their_numbers_round_trip(values: list[int], skip: int) -> None:
    array = int64_array(values, len(values))
    assert array.to_pylist() == values
    assert int64_array(np.array(values, dtype=np.int64)).equals(array)
    sliced = array.slice(min(skip, len(values)))
    assert numbers(sliced).tolist() == sliced.to_pylist()


def test_they_do_not_import_pandas() -> None:
    code = (
        "import sys; from serve_app.core.arrow_arrays import *; utf8_array(['a']);"
        "short_utf8_array(['a']); numbers(int64_array([1, 2], 2)); print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
