"""The house formats for dates and date-times shown on pages, the admin's included: "6 Dec 2026" and
"6 Dec 2026 14:05", and the time alone, "14:05", where a date and its time may break apart between two lines (a
narrow card). Templates name them (`|date:"DATE_FORMAT"`, `|date:"DATETIME_FORMAT"`, `|time:"TIME_FORMAT"`) rather
than spell a format out: pages mixed six spellings, "Y-m-d H:i", "D j M Y" and "3 hours ago" among them. Exports
(CSV, JSON) stay ISO 8601.

Django's own English formats ("Dec. 6, 2026, 2:05 p.m.") would win over settings.DATE_FORMAT, since formats are
localised: hence a format module. Only these three are set; every other format, the input formats included, stays
Django's.
"""

from __future__ import annotations

DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y H:i"
TIME_FORMAT = "H:i"  # DATETIME_FORMAT's time: Django's English one is "2:05 p.m."
