"""Input the tests feed every serializer and form: digits of other scripts, and the walkers that find every
serializer, filter set and API list."""

from __future__ import annotations

LISTS = ["/api/campaigns/", "/api/placements/", "/api/generations/", "/api/alerts/", "/api/webhooks/",
         "/api/webhook-deliveries/", "/api/shares/", "/api/teams/"]


def project_subclasses(base: type) -> set[type]:
    """The apps' subclasses of `base`, at any depth, once every API module is imported."""
    import qartsite.api_urls  # noqa: F401 (imports every API module, so every serializer and filter set is defined)

    found = set()
    for sub in base.__subclasses__():
        if sub.__module__.split(".")[0] in ("campaigns", "generator", "qartsite"):
            found.add(sub)
        found |= project_subclasses(sub)
    return found


# Digits of other scripts, which Python's int(), float() and Decimal() read as ASCII's: "１２３" is 123.
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
