"""The scanner's country from the address (`campaigns.geo`), with geoip2fast's own data file."""

from __future__ import annotations

import logging

import pytest

from campaigns import geo


@pytest.fixture(scope="module")
def loaded() -> geo.CountryDatabase:
    database = geo.CountryDatabase()
    assert database.wait()
    return database


@pytest.mark.parametrize(("address", "country"), [
    ("8.8.8.8", "US"), ("81.2.69.142", "GB"), ("200.160.2.3", "BR"),
    ("10.0.0.1", ""), ("127.0.0.1", ""), ("2001:db8::1", ""),  # private, loopback, documentation: no country
    ("not an address", ""), ("", ""), ("999.1.1.1", ""),
])
def test_it_finds_the_country_of_an_address(loaded, address, country):
    assert loaded.country(address) == country


def test_it_answers_unknown_while_loading_instead_of_waiting():
    database = geo.CountryDatabase()
    assert database.country("8.8.8.8") == ""  # starts the load, does not wait for it
    assert database.wait() and database.country("8.8.8.8") == "US"


def test_a_missing_data_file_costs_the_country_not_the_scan(caplog):
    database = geo.CountryDatabase(data_file="/nonexistent/geoip.dat.gz")
    with caplog.at_level(logging.ERROR, logger="campaigns.geo"):
        assert not database.wait()
    assert database.country("8.8.8.8") == ""
    assert "could not be loaded" in caplog.text


def test_country_of_uses_the_process_database(monkeypatch, loaded):
    monkeypatch.setattr(geo, "countries", loaded)
    assert geo.country_of("81.2.69.142") == "GB" and geo.country_of("") == ""
