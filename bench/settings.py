"""qart's settings plus one bench-only page: bench/redirect.sh serves the site with these to compare the short link
with a trivial Django view under the same gunicorn, middleware and cores."""

from qartsite.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
