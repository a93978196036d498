"""OHLCV loader: formats (header, headerless, µs, gzip, folder), duplicates, gaps, errors."""

from __future__ import annotations

import gzip
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from cryptosweep.errors import DataError
from cryptosweep.trading.data import DuplicateRowsWarning, load_ohlcv, sample_data_path

HEADER = "open_time,open,high,low,close,volume,close_time"
T0 = 1_633_046_400_000  # 2021-10-01 00:00 UTC in ms
HOUR_MS = 3_600_000


def _rows(n: int, start: int = 0) -> list[list[float]]:
    rows = []
    for i in range(start, start + n):
        price = 100.0 + i
        rows.append([T0 + i * HOUR_MS, price, price + 2.0, price - 1.0, price + 1.0, 10.0 + i])
    return rows


def _kline_line(row: list[float], *, micro: bool = False, full: bool = False) -> str:
    stamp = int(row[0]) * (1000 if micro else 1)
    cells = [str(stamp), *(repr(float(v)) for v in row[1:])]
    cells.append(str(stamp + HOUR_MS - 1))
    if full:  # the 12 columns of a Binance kline export
        cells += ["1234.5", "42", "5.0", "500.0", "0"]
    return ",".join(cells)


def _write(path, rows, *, header: bool = True, micro: bool = False, full: bool = False) -> None:
    lines = [HEADER] if header else []
    lines += [_kline_line(r, micro=micro, full=full) for r in rows]
    text = "\n".join(lines) + "\n"
    if str(path).endswith(".gz"):
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)


def _expected(rows) -> pd.DataFrame:
    index = pd.to_datetime([int(r[0]) for r in rows], unit="ms", utc=True)
    frame = pd.DataFrame(
        [r[1:] for r in rows], columns=["open", "high", "low", "close", "volume"], index=index
    )
    frame.index.name = "open_time"
    return frame


def test_sample_loads_with_the_documented_shape():
    frame = load_ohlcv()
    assert sample_data_path().is_file()
    assert len(frame) == 9504
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC" and frame.index.name == "open_time"
    assert frame.index.is_monotonic_increasing and frame.index.is_unique
    assert frame.index[0] == pd.Timestamp("2021-10-01 00:00", tz="UTC")
    assert frame.index[-1] == pd.Timestamp("2022-10-31 23:00", tz="UTC")


@pytest.mark.parametrize(
    ("name", "header", "micro", "full"),
    [
        ("with_header.csv", True, False, False),
        ("no_header.csv", False, False, True),
        ("micro.csv", True, True, False),
        ("gzipped.csv.gz", False, True, True),
    ],
)
def test_formats_load_to_the_same_frame(tmp_path, name, header, micro, full):
    rows = _rows(5)
    _write(tmp_path / name, rows, header=header, micro=micro, full=full)
    frame = load_ohlcv(tmp_path / name)
    pd.testing.assert_frame_equal(frame, _expected(rows), check_index_type=False)
    assert frame.index.equals(_expected(rows).index)


def test_folder_of_files_is_concatenated_in_time_order(tmp_path):
    rows = _rows(6)
    _write(tmp_path / "b-2021-10-02.csv", rows[3:], header=False, full=True)
    _write(tmp_path / "a-2021-10-01.csv.gz", rows[:3], micro=True)
    (tmp_path / "notes.txt").write_text("ignored")
    frame = load_ohlcv(str(tmp_path))
    assert frame.index.equals(_expected(rows).index)
    np.testing.assert_array_equal(frame["close"].to_numpy(), [r[4] for r in rows])


def test_exact_duplicates_are_dropped_with_a_warning(tmp_path):
    rows = _rows(4)
    _write(tmp_path / "dup.csv", [*rows[:3], rows[1], rows[3]])
    with pytest.warns(DuplicateRowsWarning, match=r"dup\.csv.*1 duplicate row"):
        frame = load_ohlcv(tmp_path / "dup.csv")
    assert frame.index.equals(_expected(rows).index)


def test_conflicting_duplicates_are_an_error(tmp_path):
    rows = _rows(3)
    other = [*rows[1][:4], rows[1][4] + 0.5, rows[1][5]]
    _write(tmp_path / "conflict.csv", [*rows, other])
    with pytest.raises(DataError, match=r"conflict\.csv.*2021-10-01T01:00:00.*different values"):
        load_ohlcv(tmp_path / "conflict.csv")


def test_gaps_are_logged_not_filled(tmp_path, caplog):
    rows = _rows(10)
    del rows[3:6]
    _write(tmp_path / "gap.csv", rows)
    with caplog.at_level(logging.WARNING, logger="cryptosweep.trading.data"):
        frame = load_ohlcv(tmp_path / "gap.csv")
    assert len(frame) == 7
    assert "1 gap(s)" in caplog.text and "3 missing bars" in caplog.text
    assert "0 days 04:00:00" in caplog.text  # the longest step


def _with_row(tmp_path, row_index: int, values: dict[str, object], name: str = "bad.csv"):
    rows = [[str(int(r[0])), *map(str, r[1:])] for r in _rows(5)]
    columns = ["open_time", "open", "high", "low", "close", "volume"]
    for key, value in values.items():
        rows[row_index][columns.index(key)] = str(value)
    path = tmp_path / name
    path.write_text("\n".join([",".join(columns), *(",".join(r) for r in rows)]) + "\n")
    return path


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"close": "abc"}, r"close: unparseable value 'abc'"),
        ({"open": "nan"}, r"open: missing/NaN value 'nan'"),
        ({"low": ""}, r"low: missing/NaN value ''"),
        ({"low": "-1.0"}, r"low: non-positive price -1.0"),
        ({"high": "0"}, r"high: non-positive price 0"),
        ({"high": "100.5", "low": "101.0"}, r"high 100.5 < low 101.0"),
        ({"open": "110.0"}, r"open 110.0 outside \[low 101.0, high 104.0\]"),
        ({"close": "100.0"}, r"close 100.0 outside \[low 101.0, high 104.0\]"),
        ({"volume": "-3"}, r"negative volume '-3'"),
    ],
)
def test_validation_errors_name_file_line_and_timestamp(tmp_path, values, reason):
    path = _with_row(tmp_path, 2, values)
    with pytest.raises(DataError) as caught:
        load_ohlcv(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: line 4 (open_time 2021-10-01T02:00:00+00:00): ")
    assert caught.match(reason)


def test_the_first_bad_row_is_reported(tmp_path):
    rows = [[str(int(r[0])), *map(str, r[1:])] for r in _rows(6)]
    rows[4][4] = "1e9"  # close above high, line 6
    rows[2][3] = "-5"  # negative low, line 4: earlier, reported
    path = tmp_path / "two_bad.csv"
    path.write_text("\n".join([HEADER.rsplit(",", 1)[0], *(",".join(r) for r in rows)]))
    with pytest.raises(DataError, match=r"line 4 .*low: non-positive price -5"):
        load_ohlcv(path)


def test_unparseable_open_time_names_the_raw_text(tmp_path):
    path = _with_row(tmp_path, 1, {"open_time": "yesterday"})
    with pytest.raises(DataError, match=r"bad\.csv: line 3 \(open_time 'yesterday'\): open_time"):
        load_ohlcv(path)


def test_missing_empty_and_garbage_files(tmp_path):
    with pytest.raises(DataError, match=r"nowhere\.csv: no such file or folder"):
        load_ohlcv(tmp_path / "nowhere.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: empty file"):
        load_ohlcv(tmp_path / "empty.csv")
    (tmp_path / "header_only.csv").write_text(HEADER + "\n")
    with pytest.raises(DataError, match=r"header_only\.csv: empty file"):
        load_ohlcv(tmp_path / "header_only.csv")
    (tmp_path / "garbage.csv.gz").write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match=r"garbage\.csv\.gz: cannot parse"):
        load_ohlcv(tmp_path / "garbage.csv.gz")
    (tmp_path / "narrow.csv").write_text("1633046400000,1,2\n")
    with pytest.raises(DataError, match=r"narrow\.csv: line 1 has 3 columns"):
        load_ohlcv(tmp_path / "narrow.csv")
    (tmp_path / "wrong_header.csv").write_text("time,o,h,l,c,v\n1,2,3,4,5,6\n")
    with pytest.raises(DataError, match=r"wrong_header\.csv: header lacks column\(s\) open_time"):
        load_ohlcv(tmp_path / "wrong_header.csv")
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    with pytest.raises(DataError, match=r"empty_dir: folder holds no"):
        load_ohlcv(empty_dir)


def test_clean_file_raises_no_warning(tmp_path):
    _write(tmp_path / "clean.csv", _rows(5))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_ohlcv(tmp_path / "clean.csv")
