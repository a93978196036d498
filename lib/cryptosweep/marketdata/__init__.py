"""Candles kept current: the newest closed candles of an exchange fetched with ccxt and appended,
validated and atomically, to the file a config reads (``cryptosweep data update``)."""

from __future__ import annotations

from cryptosweep.core.lazy import lazy_exports

_EXPORTS = {
    "update_candles": "cryptosweep.marketdata.store",
    "fetch_closed_candles": "cryptosweep.marketdata.exchange",
    "DataUpdateSettings": "cryptosweep.core.data_settings",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
