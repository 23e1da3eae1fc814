"""The scanner's country, looked up from the address while the scan request is answered; the address is not kept.

The database is geoip2fast's own data file (MaxMind GeoLite2 Country, IPv4 and IPv6, installed with the package from
PyPI; the README names its licence). It holds countries only, so no region is recorded. Loading it takes ~0.7 s
and ~60 MB, so it loads once per process in a background thread on the first scan: until it is ready a scan is
counted without a country rather than kept waiting. A deployment whose proxy already names the country
(`QART_COUNTRY_HEADER`) keeps using that header; this lookup only fills in when it is empty.
"""

from __future__ import annotations

import logging
import threading
from functools import lru_cache

log = logging.getLogger(__name__)

DATA_FILE = "geoip2fast-ipv6.dat.gz"  # the package's file with IPv6 as well as IPv4 networks


class CountryDatabase:
    """geoip2fast's reader, loaded in the background once; `country` answers "" until it is ready or if it failed."""

    def __init__(self, data_file: str = DATA_FILE) -> None:
        self.data_file = data_file
        self.reader = None
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._load, name="qart-geoip-load", daemon=True).start()

    def _load(self) -> None:
        try:
            from geoip2fast import GeoIP2Fast

            self.reader = GeoIP2Fast(geoip2fast_data_file=self.data_file, verbose=False)
        except Exception:
            # A missing or broken data file costs the country card its data, never a scan.
            log.exception("The country database %s could not be loaded: scans are counted without a country",
                          self.data_file)

    def wait(self, timeout: float = 30.0) -> bool:
        """Load now and wait for it (commands and tests); True when the reader is ready."""
        self.start()
        for thread in threading.enumerate():
            if thread.name == "qart-geoip-load":
                thread.join(timeout)
        return self.reader is not None

    def country(self, address: str) -> str:
        """The ISO 3166 code of the country `address` is in; "" when unknown, private, malformed or not loaded."""
        reader = self.reader
        if reader is None:
            self.start()
            return ""
        return _country(reader, address)


@lru_cache(maxsize=8192)
def _country(reader, address: str) -> str:
    """`reader`'s country code for `address`, remembered: a person scanning again, or the many people behind one
    carrier address, cost a dict lookup instead of the library's lookup (which also formats a timing string, a
    network and its AS name on every call). 8,192 addresses take about a megabyte."""
    try:
        found = reader.lookup(address)
    except Exception:  # the library's own errors for odd input: an unknown country, not a failed scan
        return ""
    code = getattr(found, "country_code", "") or ""
    return code.upper() if len(code) == 2 and code.isalpha() else ""


countries = CountryDatabase()


def country_of(address: str) -> str:
    """The country of a scanner's address, or "" (see `CountryDatabase.country`)."""
    return countries.country(address) if address else ""
