"""The ``data.update`` config section, re-exported: :class:`DataUpdateSettings` is defined
with the data section in :mod:`cryptosweep.core.data_settings` (``data.update``, left out
of the results hash) and imported from there.

```yaml
data:
  path: data/BTCUSDT-1h.csv.gz
  update: {exchange: binance, symbol: BTC/USDT, interval: 1h}
```

``timeout_s`` is the deadline of each whole HTTP request (connect to last byte), ``retries``
the retries of a failed one (an HTTP 429's ``Retry-After`` is waited, up to 60 s; an HTTP 418
ban is never retried): see :mod:`cryptosweep.marketdata.exchange`.

Called as::

    from cryptosweep.marketdata.store import update_candles

    summary = update_candles(config.data.path, **config.data.update.call_kwargs())
"""

from __future__ import annotations

from cryptosweep.core.data_settings import DataUpdateSettings

__all__ = ["DataUpdateSettings"]
