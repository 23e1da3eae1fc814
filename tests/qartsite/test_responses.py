"""Small HTTP answers (`qartsite.responses`)."""

from __future__ import annotations

import gzip

from django.test import RequestFactory

from qartsite.responses import csv_download, download_disposition


class TestDownloadDisposition:
    def test_it_keeps_an_ascii_name_as_before(self):
        assert download_disposition("Spring Sale", "scans.csv") == 'attachment; filename="spring-sale-scans.csv"'

    def test_it_names_the_file_in_any_script_with_an_ascii_name_beside(self):
        # The ASCII slug dropped every other letter: "東京 Café" was "cafe", "東京" nothing at all.
        assert download_disposition("東京 Café", "scans.csv") == (
            "attachment; filename=\"cafe-scans.csv\"; filename*=utf-8''%E6%9D%B1%E4%BA%AC-caf%C3%A9-scans.csv")
        assert download_disposition("東京", "placements.csv") == (
            "attachment; filename=\"placements.csv\"; filename*=utf-8''%E6%9D%B1%E4%BA%AC-placements.csv")

    def test_no_quote_semicolon_or_line_break_of_a_name_reaches_the_header(self):
        header = download_disposition('Ü "x"; filename=evil.exe\r\nSet-Cookie: a=1', "scans.csv")
        assert header.startswith('attachment; filename="u-x-filenameevilexe-set-cookie-a1-scans.csv"; filename*=')
        assert header.count('"') == 2 and header.count(";") == 2 and not set("\r\n\\") & set(header)


class TestCsvDownload:
    def test_no_cache_keeps_it(self):
        response = csv_download(RequestFactory().get("/"), iter(["a,b\r\n"]), "Spring", "scans.csv")
        assert {"private", "no-store", "no-cache"} <= set(response["Cache-Control"].replace(" ", "").split(","))
        assert "public" not in response["Cache-Control"]

    def test_it_gzips_the_rows_as_they_come_for_a_client_that_takes_it(self):
        lines = ["time,slug\r\n", *(f"2026-12-0{n % 9 + 1},abc\r\n" for n in range(500))]
        response = csv_download(RequestFactory().get("/", HTTP_ACCEPT_ENCODING="gzip, br"), iter(lines), "", "x.csv")
        assert response.streaming and response["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in response["Vary"]
        assert gzip.decompress(b"".join(response.streaming_content)).decode() == "".join(lines)
        plain = csv_download(RequestFactory().get("/"), iter(lines), "", "x.csv")
        assert not plain.has_header("Content-Encoding") and "Accept-Encoding" in plain["Vary"]
        assert b"".join(plain.streaming_content).decode() == "".join(lines)
