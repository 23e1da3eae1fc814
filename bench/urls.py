"""The site's routes plus `/bench/302`: the same redirect `/r/<slug>` answers, with no lookup and no scan recorded."""

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path

from qartsite.urls import handler403, handler404, handler500  # noqa: F401
from qartsite.urls import urlpatterns as site_patterns


def trivial_302(request: HttpRequest) -> HttpResponse:
    response = HttpResponseRedirect("https://shop.example.com/offer?utm_source=qr&utm_medium=print&utm_campaign=bench")
    response["Cache-Control"] = "no-store"
    return response


urlpatterns = [path("bench/302", trivial_302), *site_patterns]
