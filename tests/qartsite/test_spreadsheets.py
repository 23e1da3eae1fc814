"""Cells of CSV exports: a spreadsheet must show what a scanner or labeler typed, never run it."""

from __future__ import annotations

import pytest

from qartsite.spreadsheets import csv_cell, csv_value


class TestCsvCell:
    @pytest.mark.parametrize("text", ["=1+1", "+1-1", "-2+3", "@SUM(A1)", "\t=1", "\r=1",
                                      '=HYPERLINK("https://evil.example")'])
    def test_it_quotes_a_cell_that_a_spreadsheet_would_run(self, text):
        assert csv_cell(text) == "'" + text

    @pytest.mark.parametrize("text", ["iPhone 13", "https://t.co/x", "", " =1", "a=b", "'=1"])
    def test_it_leaves_other_text_alone(self, text):
        assert csv_cell(text) == text

    def test_it_writes_none_as_empty_and_numbers_as_numbers(self):
        assert csv_cell(None) == ""
        assert (csv_cell(-1), csv_cell(0.25), csv_cell(7)) == (-1, 0.25, 7)  # a vote of -1 is data, not a formula


class TestCsvValue:
    @pytest.mark.parametrize("text", ["=1+1", "-2nd floor", "+44 20", "@home", "\t=1", '=HYPERLINK("x")'])
    def test_it_reads_back_what_csv_cell_quoted(self, text):
        assert csv_value(csv_cell(text)) == text

    @pytest.mark.parametrize("text", ["'Tis the season", "'", "''", "plain", "", " '=1"])
    def test_it_keeps_a_quote_before_anything_else(self, text):
        assert csv_value(text) == text
