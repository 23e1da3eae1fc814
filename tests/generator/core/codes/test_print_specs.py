"""Print specs: lengths typed with their unit, and said back in centimetres and inches."""

from __future__ import annotations

import pytest

from generator.core.codes import print_specs


class TestLengths:
    @pytest.mark.parametrize(("text", "mm"), [("20cm", 200.0), ("200 mm", 200.0), ("8in", 203.2), ('8"', 203.2),
                                              ("0.2m", 200.0), ("3mm", 3.0), ("2.5 CM", 25.0), (".5cm", 5.0),
                                              ("20.cm", 200.0), ("+3mm", 3.0), ("20,5cm", 205.0),
                                              ("2,25 m", 2250.0), ("+20,5cm", 205.0)])
    def test_it_reads_a_length_with_its_unit(self, text, mm):
        assert print_specs.parse_length(text) == pytest.approx(mm)

    @pytest.mark.parametrize(("text", "mm"), [("20\u00a0cm", 200.0), ("20\u202fcm", 200.0), ("20,5\u00a0cm", 205.0),
                                              ("\u00a0+3\u2009mm", 3.0)])
    def test_it_reads_a_length_whose_space_is_not_a_plain_one(self, text, mm):
        # A no-break space (French typography, a word processor's copy, macOS's Option-Space) was refused as "needs a
        # number and a unit" once the patterns took ASCII digits only (re.ASCII narrows \s too).
        assert print_specs.parse_length(text) == pytest.approx(mm)

    @pytest.mark.parametrize("text", ["20 inche\u017f", "20 \u0131n"])
    def test_a_unit_in_other_letters_is_refused_with_one_message(self, text):
        # Case-insensitive Unicode matching read "ſ" as "s" and "ı" as "i", and the unit then named no entry (KeyError).
        with pytest.raises(print_specs.PrintError, match="needs a number and a unit"):
            print_specs.parse_length(text)

    @pytest.mark.parametrize("text", ["0", " 0.0 ", "+0", ".0"])
    def test_nothing_needs_no_unit(self, text):
        # "0" for no bleed was refused for want of a unit: zero is zero in any of them.
        assert print_specs.parse_length(text, "bleed") == 0.0

    @pytest.mark.parametrize("text", ["20", "cm", "--3mm", "20 furlongs", "", "20cm; rm -rf /", "1,000mm", "01",
                                      "20,5",
                                      # Other scripts' digits, which \d and float() read: "２０cm" printed 20 cm.
                                      "２０cm", "٢٠ mm", "20.５cm", "20,５cm"])
    def test_it_refuses_a_length_without_a_unit_with_one_message(self, text):
        with pytest.raises(print_specs.PrintError, match="needs a number and a unit"):
            print_specs.parse_length(text)

    def test_a_negative_length_is_said_to_be_one(self):
        # "-3mm" has a number and a unit: being told it lacks them sends a person looking for the wrong thing.
        with pytest.raises(print_specs.PrintError, match="The bleed cannot be negative, got “-3mm”"):
            print_specs.parse_length(" -3mm", "bleed")
        # With a decimal comma too ("-0,5cm" was told it lacked a number and a unit, "+20,5cm" was refused so).
        with pytest.raises(print_specs.PrintError, match="The bleed cannot be negative, got “-0,5cm”"):
            print_specs.parse_length("-0,5cm", "bleed")

    def test_it_describes_a_length_in_cm_and_inches(self):
        assert print_specs.describe_length(200) == "20 cm (7.87 in)"
        assert print_specs.describe_length(2048 / 300 * 25.4) == "17.3 cm (6.83 in)"  # not 17.3397 cm


class TestMessages:
    def test_it_quotes_what_was_typed_as_the_sites_messages_do(self):
        # repr wrote 'gif' in single quotes and a control character as \x1b, where the site's messages write
        # “gif” and \u001b (`echoes.echo`): the print pages showed both kinds side by side.
        with pytest.raises(print_specs.PrintError) as exc:
            print_specs.parse_length("2\x000cm")
        assert str(exc.value) == "The width “2\\u00000cm” needs a number and a unit, e.g. 20cm, 200mm or 8in."
        with pytest.raises(print_specs.PrintError) as exc:
            print_specs.parse_length("-3\\mm", "bleed")
        assert str(exc.value) == "The bleed “-3\\\\mm” needs a number and a unit, e.g. 20cm, 200mm or 8in."
        with pytest.raises(print_specs.PrintError) as exc:
            print_specs.PrintSpec(width_mm=200, format="gif\x1b").validate(vector=True)
        assert str(exc.value) == "Print formats are pdf, png, tiff, svg; “gif\\u001b” is not one of them."
