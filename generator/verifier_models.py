"""The scan verifier's decision models on the Django side: which one judges, and what it says about a candidate.

- `active_model()`: the model that judges now: the active `VerifierModel` row, else the shipped
  `decision.DEFAULT_MODEL`. One indexed query, so every job asks at its start and workers pick up an activation at
  their next job.
- `store(calibration, ...)`: a model fitted by `qart_calibrate`, kept as a row with its figures (not active).
- `activate(row, user)` and `rollback(user)`: superusers only, since every team's jobs use the active model; a
  model fitted on fewer than `calibration.FULL_PER_CLASS` labels of a class, or to another feature set (`form`) than
  the verifier's today, is activated only when forced. Each activation is kept (`VerifierActivation`); a rollback
  undoes the latest one still standing, so rollbacks walk back through the activations in order (a model activated
  twice is returned to in between) and end at the shipped default.
- `current_verdict(candidate)`: the candidate's verdict under the active model, verified again (and saved) when
  another model judged it. Called before a candidate becomes a placement's artwork.
- `judged_fields(result)` and `scan_verdict(candidate)`: what a candidate stores of a verification, and its verdict in
  plain words for the job page and the API.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from generator.core.codes import decision, images, scan
from generator.core.evals import calibration
from generator.models import Candidate, VerifierActivation, VerifierModel

NOT_SUPERUSER = "Only a superuser activates or rolls back a verifier model: every team's jobs use the active one."
SCANS = "Scans reliably."
UNSAFE = "Unsafe: a phone may read a different text from it than the code should carry."
FEW_READS = "phones read it in too few of the simulated captures."


class VerdictUnavailable(Exception):
    """The candidate's image cannot be read, so it cannot be verified again (the message says so)."""


def decision_model(row: VerifierModel) -> decision.DecisionModel:
    """The `decision.DecisionModel` a stored row holds."""
    return decision.DecisionModel(float(row.bias), tuple((str(name), float(w)) for name, w in row.weights), row.form)


def active_row() -> VerifierModel | None:
    """The active row; None when the shipped default judges."""
    return VerifierModel.objects.filter(is_active=True).select_related("activated_by").first()


def active_model() -> decision.DecisionModel:
    """The model that judges now: the active row's, else the shipped default."""
    row = active_row()
    return decision_model(row) if row is not None else decision.DEFAULT_MODEL


def store(result: calibration.Calibration, user, source: str, labels: list[str]) -> VerifierModel:
    """Keep a fitted model as a row (not active), with who made it, from which labels, and its figures."""
    return VerifierModel.objects.create(
        model_id=result.model.id, form=result.model.form, bias=result.model.bias,
        weights=[[name, w] for name, w in result.model.weights], created_by=user, source=source, labels=labels,
        label_count=result.labels, scanned_count=result.scanned, figures=result.to_dict(),
    )


def activation_refusal(row: VerifierModel) -> str:
    """Why `row` may be activated only when forced ("" when it may be activated plainly)."""
    if row.form != decision.DEFAULT_MODEL.form:
        return (f"{row.model_id} was fitted to the verifier's features of {row.form}, and the verifier now measures "
                f"those of {decision.DEFAULT_MODEL.form}: its weights may not mean what they did, so it is activated "
                "only when forced.")
    fewest = min(row.scanned_count, row.not_scanned_count)
    if fewest >= calibration.FULL_PER_CLASS:
        return ""
    return (f"{row.model_id} was fitted on {row.scanned_count} scanned and {row.not_scanned_count} not scanned "
            f"labels, fewer than {calibration.FULL_PER_CLASS} of a class: its figures are rough, so it is activated "
            "only when forced.")


def activate(row: VerifierModel, user, force: bool = False) -> None:
    """Make `row` the model every job and page uses; `rollback` undoes it. Activating the active model does nothing.

    Raises:
        PermissionDenied: `user` is not a superuser.
        ValueError: fitted on too few labels and not forced, or another activation happened at the same moment.
    """
    if user is None or not user.is_superuser:
        raise PermissionDenied(NOT_SUPERUSER)
    refusal = activation_refusal(row)
    if refusal and not force:
        raise ValueError(refusal)
    with transaction.atomic():
        _lock()
        current = VerifierModel.objects.filter(is_active=True).first()
        if current is not None and current.pk == row.pk:
            return
        _switch(current, row, user)
        VerifierActivation.objects.create(model=row, activated_by=user)


def rollback(user) -> VerifierModel | None:
    """Undo the latest activation still standing: the model of the one before it judges again (None: the shipped
    default does).

    Raises:
        PermissionDenied: `user` is not a superuser.
        ValueError: the shipped default already judges: there is nothing to roll back.
    """
    if user is None or not user.is_superuser:
        raise PermissionDenied(NOT_SUPERUSER)
    with transaction.atomic():
        _lock()
        current = VerifierModel.objects.filter(is_active=True).first()
        if current is None:
            raise ValueError("The shipped default model already judges: there is nothing to roll back.")
        latest = _standing().filter(model=current).first()  # none for a row made active outside `activate`
        if latest is not None:
            latest.undone_by, latest.undone_at = user, timezone.now()
            latest.save(update_fields=["undone_by", "undone_at"])
        target = rollback_target()
        _switch(current, target, user)
    return target


def rollback_target() -> VerifierModel | None:
    """The model a rollback now returns to: that of the latest activation still standing, past the active model's
    own (None: the shipped default). Inside `rollback`, the active model's is already undone."""
    standing = list(_standing().select_related("model")[:2])
    if standing and standing[0].model.is_active:
        standing = standing[1:]
    return standing[0].model if standing else None


def history(limit: int = 20) -> list[VerifierActivation]:
    """The latest activations, newest first, with whether and by whom each was rolled back."""
    return list(VerifierActivation.objects.select_related("model", "activated_by", "undone_by")[:limit])


def in_use(row: VerifierModel) -> bool:
    """Whether `row` judges now or a rollback may return to it (an activation of it still stands)."""
    return row.is_active or _standing().filter(model=row).exists()


def _standing():
    return VerifierActivation.objects.filter(undone_at__isnull=True)  # newest first


def _lock() -> None:
    """Serialise activations and rollbacks: every model row locked, in one order, inside the caller's transaction.
    The caller's next query (a new statement) then sees what the one before it committed; a double-submitted
    activation finds its model already active instead of activating it a second time."""
    list(VerifierModel.objects.select_for_update().order_by("pk").values_list("pk", flat=True))


def _switch(old: VerifierModel | None, new: VerifierModel | None, user) -> None:
    try:
        with transaction.atomic():
            if old is not None:
                VerifierModel.objects.filter(pk=old.pk).update(is_active=False)
            if new is not None:
                new.is_active, new.activated_by, new.activated_at = True, user, timezone.now()
                new.save(update_fields=["is_active", "activated_by", "activated_at"])
    except IntegrityError:  # the one-active constraint: someone else activated a model meanwhile
        raise ValueError("Another verifier model was activated at the same moment; look again and retry.") from None
    if old is not None:
        old.is_active = False


def judged_fields(result: scan.ScanResult) -> dict:
    """The `Candidate` fields a verification fills: probability, verdict, what was read, the judging model, and
    `scan_details` (features, grades, reasons) for the verdict in words."""
    return {
        "scan_probability": result.scan_probability, "verdict": result.verdict, "misread": result.misread,
        "decoded_text": "\n".join(result.decoded), "verifier_model": result.model,
        "scan_details": {"features": result.features, "grades": result.grades, "reasons": result.reasons,
                         "seconds": result.seconds},
    }


def current_verdict(candidate: Candidate, model: decision.DecisionModel | None = None) -> Candidate:
    """The candidate, judged by the active model: verified again and saved when another model judged it.

    Args:
        candidate: with its job (the text the code must carry).
        model: the model to judge by; the active one by default.

    Returns:
        The same candidate, its verdict fields up to date.

    Raises:
        VerdictUnavailable: its stored image is missing or unreadable.
    """
    model = model or active_model()
    if candidate.verifier_model == model.id:
        return candidate
    try:
        with candidate.image.open("rb") as stored:
            image = images.open_image(stored.read(), max_pixels=settings.QART["MAX_IMAGE_PIXELS"])
    except (OSError, ValueError):  # gone from storage, no file at all, or not an image (ImageError)
        raise VerdictUnavailable("This candidate's image is missing or unreadable, so it could not be checked "
                                 "with the current scan verifier.") from None
    result = scan.verify(image, candidate.job.content, threshold=settings.QART["SCAN_THRESHOLD"], model=model)
    fields = judged_fields(result)
    # Keep what the job stored besides the verification (e.g. repair's figures), replace the verification's part.
    kept = candidate.scan_details if isinstance(candidate.scan_details, dict) else {}
    fields["scan_details"] = {**kept, **fields["scan_details"]}
    for name, value in fields.items():
        setattr(candidate, name, value)
    candidate.save(update_fields=list(fields))
    return candidate


def scan_reasons(candidate: Candidate) -> list[dict[str, str]]:
    """What the verifier found wrong, `{"code", "text"}` worst first ([] when nothing, or not recorded)."""
    details = candidate.scan_details if isinstance(candidate.scan_details, dict) else {}
    reasons = details.get("reasons") if isinstance(details.get("reasons"), list) else []
    return [r for r in reasons if isinstance(r, dict) and isinstance(r.get("text"), str) and r["text"]]


def scan_verdict(candidate: Candidate) -> str:
    """The candidate's verdict in plain words, with its reasons: "Scans reliably." or "May not scan: the top-left
    finder pattern (...) is damaged." One wording for the job page and the API."""
    reasons = [r["text"] for r in scan_reasons(candidate)]
    if candidate.misread:
        return UNSAFE
    if candidate.verdict == Candidate.Verdict.PASS:
        return SCANS if not reasons else f"Scans reliably, though {_sentences(reasons)}"
    if reasons:
        return f"May not scan: {_sentences(reasons)}"
    # Candidates stored before reasons were recorded say no more than their verdict.
    recorded = isinstance(candidate.scan_details, dict) and "reasons" in candidate.scan_details
    return f"May not scan: {FEW_READS}" if recorded else "May not scan."


def _sentences(texts: list[str]) -> str:
    """Reasons after a colon: the first one's capital dropped ("The top-left ..." -> "the top-left ...")."""
    first = texts[0]
    if len(first) > 1 and first[0].isupper() and first[1].islower():
        first = first[0].lower() + first[1:]
    return " ".join([first, *texts[1:]])
