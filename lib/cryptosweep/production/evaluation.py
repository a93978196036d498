"""A small offline HTML page of one backtest: the metrics, the equity curve with the entries,
the drawdown, and the trades. plotly.js is written next to the page (``plotly-<version>.min.js``,
once per folder, the same file the nightly's reports folder holds: a page written there adds no
second copy), so the page stays small and nothing is loaded from the network."""

from __future__ import annotations

import html
import math
import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from cryptosweep.core.errors import ConfigError, UserError
from cryptosweep.core.files import output_problem, write_text_atomic
from cryptosweep.core.plotly_library import ensure_plotly_js
from cryptosweep.production.candles import check_candles, closed_bars, load_candles
from cryptosweep.production.model import (
    MANIFEST,
    Backtest,
    CalendarWarning,
    InSampleWarning,
    TrainedModel,
    load_model,
    train_model,
)
from cryptosweep.trading.metrics import METRIC_NAMES


def model_for(source: str | Path, *, rank: int | None = None, until: Any = None
              ) -> TrainedModel:  # fmt: skip
    """The model ``source`` names: a model folder (``manifest.json`` in it) is loaded; a
    best-configs file, run folder or models folder is trained (:func:`train_model`, on the
    configuration's data, configuration ``rank`` (default 1), ``until`` its last bar to train
    on). ``rank`` or ``until`` with a model folder is a ``ConfigError``: it would be ignored."""
    folder = Path(source)
    if (folder / MANIFEST).is_file():
        for flag, value in (("--until", until), ("--rank", rank)):
            if value is not None:
                raise ConfigError(f"{flag} chooses and trains a best configuration; {folder} "
                                  "is a model that is already trained")
        return load_model(folder)
    return train_model(folder, rank=1 if rank is None else rank, until=until)


class Evaluation(NamedTuple):
    """What :func:`evaluate` returns."""

    backtest: Backtest
    page: Path | None
    notes: list[str]
    reaches_holdout: bool


def evaluate(
    model: TrainedModel, data: str | Path, *, start: Any = None, end: Any = None,
    html_path: str | Path | None = None, title: str | None = None,
    format: str | None = None, columns: dict[str, str] | None = None,
) -> Evaluation:
    """Backtest ``model`` on the candles at ``data`` (read with the model's loader options, or
    ``format``/``columns`` for a file laid out otherwise: ``evaluate --format/--columns``)
    from ``start`` to ``end`` and, when ``html_path`` is given, write the page
    :func:`write_evaluation_html` there (nothing is written otherwise). A last bar that has
    not closed yet (an exporter's forming candle) is left out, with a note, as ``signals``
    does; a bar that opens after now is a ``DataError``. Returns an
    :class:`Evaluation`: the backtest, the page (None), whether the period looks at the
    holdout of the model's sweep (:meth:`TrainedModel.reaches_holdout`: a look the trial ledger
    counts) and the notes: one when the period overlaps the bars the model was trained
    on (:meth:`TrainedModel.in_sample_note`: the same market, the same dates), one when the
    candles' calendar is not the training's (:meth:`TrainedModel.calendar_note`), one when its
    configuration was not approved by the deployment gate. Bad input (data, times) is a
    ``UserError`` before anything is written, and so is an ``html_path`` that cannot be
    written or is a file this command did not write (:func:`check_html_target`)."""
    from cryptosweep.production.configuration import gate_note

    if html_path is not None:
        check_html_target(html_path)
    candles = check_candles(load_candles(data, model.spec, format=format, columns=columns),
                            model.bar_interval)
    ohlcv, forming = closed_bars(candles, model.bar_interval, pd.Timestamp.now(tz="UTC"))
    with warnings.catch_warnings():
        for said_below in (InSampleWarning, CalendarWarning):  # the notes say each once
            warnings.simplefilter("ignore", said_below)
        backtest = model.backtest_details(ohlcv, start, end)
    notes = [note for note in (
        forming, model.in_sample_note(ohlcv, backtest.times[0], backtest.times[-1]),
        model.calendar_note(ohlcv), gate_note(model.manifest.get("deployment"))) if note]
    reaches = model.reaches_holdout(ohlcv, backtest.times[-1])
    if html_path is None:
        return Evaluation(backtest, None, notes, reaches)
    heading = title or (f"{model.family} model on {Path(data).name}: backtest")
    page = write_evaluation_html(html_path, backtest, title=heading, notes=notes)
    return Evaluation(backtest, page, notes, reaches)


#: The tag in the head of every page ``evaluate`` writes: the one kind of existing file its
#: ``--html`` replaces.
GENERATOR = '<meta name="generator" content="cryptosweep evaluate">'


def check_html_target(target: str | Path) -> None:
    """A :class:`~cryptosweep.core.errors.UserError` unless ``target`` can be written as the
    evaluation page: a writable place (:func:`~cryptosweep.core.files.output_problem`), and
    either a new file or a page this command wrote (:data:`GENERATOR`)."""
    if str(target).endswith(("/", os.sep)):  # Path() would drop the slash: a file "pages"
        raise UserError(f"--html {target}: names a folder; give the page's file name (e.g. "
                        f"{str(target).rstrip('/' + os.sep) or '.'}/backtest.html)")
    target = Path(target)
    why = output_problem(target)
    if why is not None:
        raise UserError(f"--html {target}: cannot write the page there ({why})")
    if target.exists():
        try:
            with open(target, "rb") as page:
                head = page.read(4096)
        except OSError as exc:
            raise UserError(f"--html {target}: cannot read it ({exc.strerror})") from None
        if GENERATOR.encode() not in head:
            raise UserError(f"--html {target} exists and is not a page `cryptosweep evaluate` "
                            "wrote; it is left as it is: remove it or choose another --html")


def write_evaluation_html(
    target: str | Path, backtest: Backtest, *, title: str, notes: list[str] | None = None,
) -> Path:
    """Write the page of ``backtest`` to ``target`` (and plotly.js beside it, once a folder);
    ``notes`` are shown under the title (e.g. that the period overlaps the training bars)."""
    from plotly.subplots import make_subplots

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    library = ensure_plotly_js(target.parent)
    times = backtest.times.tz_convert("UTC").tz_localize(None)  # plotly.js ignores zones
    equity = np.cumprod(1.0 + backtest.result.returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], equity]))[1:]
    drawdown = equity / peak - 1.0
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3],
                           vertical_spacing=0.04)
    figure.add_scatter(x=times, y=equity, name="equity", mode="lines", row=1, col=1)
    for side, name, symbol, colour in ((1, "long entry", "triangle-up", "#2ca02c"),
                                       (-1, "short entry", "triangle-down", "#d62728")):
        entries = [t.entry_bar for t in backtest.result.trades if t.side == side]
        if entries:
            figure.add_scatter(x=times[entries], y=equity[entries], name=name, mode="markers",
                               marker={"symbol": symbol, "color": colour, "size": 7},
                               row=1, col=1)
    figure.add_scatter(x=times, y=drawdown, name="drawdown", mode="lines", fill="tozeroy",
                       line={"color": "#d62728"}, row=2, col=1)
    figure.update_layout(template="plotly_white", height=560, margin={"t": 30},
                         legend={"orientation": "h"})
    figure.update_yaxes(title_text="equity (start = 1)", row=1, col=1)
    figure.update_yaxes(title_text="drawdown", tickformat=".0%", row=2, col=1)
    chart = figure.to_html(full_html=False, include_plotlyjs=False,
                           config={"displaylogo": False})
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{GENERATOR}<title>{html.escape(title)}</title>
<script src="{html.escape(library.name)}"></script>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#f4f4f4}}
td:first-child,th:first-child{{text-align:left}}.note{{color:#a15c00}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(_period(backtest))}</p>
{"".join(f'<p class="note">{html.escape(note)}</p>' for note in notes or [])}
{_metrics_table(backtest.metrics)}
{chart}
<h2>Trades ({len(backtest.result.trades)})</h2>
{_trades_table(backtest)}
</body></html>
"""
    write_text_atomic(target, page)
    return target


def _period(backtest: Backtest) -> str:
    first, last = backtest.times[0], backtest.times[-1]
    return (f"{len(backtest.times)} bars, {first.isoformat()} to {last.isoformat()} (bar open "
            "times, UTC); flat at the first bar")


def _metrics_table(metrics: dict[str, Any]) -> str:
    rows = "".join(f"<tr><td>{name}</td><td>{_number(metrics[name])}</td></tr>"
                   for name in METRIC_NAMES)
    head = "<tr><th>metric</th><th>value</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{rows}</tbody></table>"


def _trades_table(backtest: Backtest) -> str:
    times = backtest.times
    rows = []
    for trade in backtest.result.trades:
        rows.append(
            f"<tr><td>{times[trade.entry_bar].strftime('%Y-%m-%d %H:%M')}</td>"
            f"<td>{times[trade.exit_bar].strftime('%Y-%m-%d %H:%M')}</td>"
            f"<td>{'long' if trade.side > 0 else 'short'}</td>"
            f"<td>{trade.entry_price:.6g}</td><td>{trade.exit_price:.6g}</td>"
            f"<td>{html.escape(trade.exit_reason)}</td><td>{trade.net_return:+.4%}</td></tr>"
        )
    head = ("<tr><th>entry (UTC)</th><th>exit bar (UTC)</th><th>side</th><th>entry price</th>"
            "<th>exit price</th><th>exit</th><th>net return</th></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def _number(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return "–" if value is None or not math.isfinite(value) else f"{value:.4g}"
