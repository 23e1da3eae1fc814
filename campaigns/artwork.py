"""Which picture may become a placement's artwork: one rule for the placement form, the generation page's "Use
this one", the API and the admin.

A printed code cannot be fixed afterwards, so artwork must
- belong to the campaign's team;
- carry this placement's own short link (else its scans count elsewhere, or nowhere): a candidate made for
  another link is restamped for this placement (`campaigns.restamps`) or refused;
- pass the scan verdict (`print_verdict`), unless someone says "print anyway" and why: the placement then shows
  "will not scan — do not print" and offers no print downloads of it.

Entry points call `campaigns.restamps.prepare` (the slow part: verifying, restamping) before they lock the placement,
then, under the lock, `campaigns.restamps.choose` (which asks `problem` and restamps on request) before they save,
and `apply` to record the choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from django.urls import reverse
from django.utils import timezone

from campaigns import webhooks
from generator import verifier_models
from generator.models import Candidate
from qartsite import site

TEAM, LINK, SCAN = "team", "link", "scan"


@dataclass(frozen=True)
class PrintVerdict:
    """Whether a candidate may be printed as it is, and if not, why (one sentence for a person)."""

    passed: bool
    scan_probability: float
    reason: str = ""


def print_verdict(candidate: Candidate, *, judge_again: bool = False) -> PrintVerdict:
    """Whether `candidate` passes the scan check for printing: the single place every path asks.

    Pages that show a state read the stored verdict; choosing artwork (`problem`) passes `judge_again`, which first
    verifies the candidate again when a verifier model other than the active one judged it
    (`generator.verifier_models.current_verdict`): a model activated since the job ran may see it differently.

    Args:
        candidate: the candidate.
        judge_again: verify it with the active model first when another one judged it.

    Returns:
        A `PrintVerdict`.
    """
    if judge_again:
        try:
            verifier_models.current_verdict(candidate)
        except verifier_models.VerdictUnavailable as exc:
            return PrintVerdict(False, candidate.scan_probability, str(exc))
    passed = candidate.verdict == Candidate.Verdict.PASS and not candidate.misread
    if passed:
        return PrintVerdict(True, candidate.scan_probability)
    why = " and a phone could read another text from it" if candidate.misread else ""
    return PrintVerdict(False, candidate.scan_probability, (
        f"Candidate #{candidate.rank or candidate.index + 1} of generation #{candidate.job_id} does not pass the "
        f"scan check (scan "
        f"probability {candidate.scan_probability:.0%}{why}): phones will likely not read it."))


def carries_short_link(content: str, placement) -> bool:
    """Whether an artwork's content is this placement's short link on a host of this site (`site.is_own_link`:
    SITE_ROOT's, else any the site answers to, so art made on a developer's LAN address still counts)."""
    return carries_path(content, placement) and site.is_own_link(content)


def carries_path(content: str, placement) -> bool:
    """Whether `content` is a link to this placement's short-link path, on whatever host."""
    try:
        return urlsplit(content).path in short_link_paths(placement.slug)
    except ValueError:  # not a URL urlsplit can take apart (a broken IPv6 host): not this link
        return False


def short_link_paths(slug: str) -> tuple[str, str]:
    """The paths a code for `slug` may carry: "/r/<slug>", and "/R/<slug>" (`links.code_link`'s capitals, which art
    made with either setting carries). The slug itself exactly as stored: never another slug in another case."""
    path = reverse("short_link", args=[slug])
    head, _, tail = path.rpartition("/r/")
    return path, f"{head}/R/{tail}"


class ArtworkRefused(Exception):
    """A candidate that cannot become this placement's artwork as asked.

    Attributes:
        message: why, for a person.
        code: `TEAM`, `LINK` (restamping would help) or `SCAN` (only "print anyway" would).
        candidate: the candidate judged (a restamped copy, when one was made), to offer "print anyway" on.
    """

    def __init__(self, message: str, code: str, candidate: Candidate | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.candidate = candidate


def problem(placement, candidate: Candidate, *, print_anyway_reason: str = "") -> ArtworkRefused | None:
    """What stops `candidate` from becoming `placement`'s artwork, or None.

    Args:
        placement: the placement (saved: its short link must exist).
        candidate: the candidate asked for.
        print_anyway_reason: why it is printed although it fails the scan check; empty: it must pass.

    Returns:
        An `ArtworkRefused` to raise or show, or None.
    """
    if candidate.job.team_id != placement.campaign.team_id:
        return ArtworkRefused("Choose an image your campaign's team generated.", TEAM, candidate)
    if not placement.slug or not carries_short_link(candidate.job.content, placement):
        where = ("this placement's short link on another site's address, which phones would not bring here" if
                 placement.slug and carries_path(candidate.job.content, placement) else
                 f"not this placement's short link (/r/{placement.slug})")
        return ArtworkRefused(
            f"This picture carries {candidate.job.content}: {where}, so its scans would not count here. Restamp it "
            "for this placement (a copy that carries this placement's link), or choose another.", LINK, candidate)
    verdict = print_verdict(candidate, judge_again=True)
    if not verdict.passed and not print_anyway_reason.strip():
        return ArtworkRefused(
            f"{verdict.reason} To print it all the same, choose “print anyway” and say why.", SCAN, candidate)
    return None


def check(placement, candidate: Candidate, *, print_anyway_reason: str = "") -> None:
    """Raise `ArtworkRefused` when `problem` finds one."""
    refused = problem(placement, candidate, print_anyway_reason=print_anyway_reason)
    if refused is not None:
        raise refused


def apply(placement, candidate: Candidate | None, *, user, print_anyway_reason: str = "") -> None:
    """Make `candidate` the artwork (not saved), recording who printed it anyway and why when it fails.

    A passing candidate (or none) clears the record: it belongs to the failing artwork it was given for.
    """
    if placement.artwork_id != (candidate.pk if candidate is not None else None):
        webhooks.artwork_changed(placement, candidate.pk if candidate is not None else None)
    placement.artwork = candidate
    if candidate is None or print_verdict(candidate).passed:
        placement.print_anyway_by, placement.print_anyway_at, placement.print_anyway_reason = None, None, ""
    else:
        placement.print_anyway_by = user if getattr(user, "is_authenticated", False) else None
        placement.print_anyway_at = timezone.now()
        placement.print_anyway_reason = print_anyway_reason.strip()


APPLIED_FIELDS = ["artwork", "print_anyway_by", "print_anyway_at", "print_anyway_reason"]


def will_not_scan(placement) -> str:
    """The red state's sentence when the placement's artwork fails the scan check, else ""."""
    if placement.artwork is None:
        return ""
    verdict = print_verdict(placement.artwork)
    return "" if verdict.passed else verdict.reason
