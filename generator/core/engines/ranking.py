"""Best-of-N: generate a batch, verify and score every candidate, rank, and spend more compute only if needed.

Plain Python, importable without Django. The job layer (`generator.jobs`) and `qart_generate` both call
`best_of_n`; progress flows out through one `on_progress(stage, fraction)` callable.

Ranking (`rank`): a code that scans always comes before one that does not. Diffusion candidates then go by the
scan-reliability band people see on the card (`scan_band`: excellent, good, poor), then by looks, so a "good"
candidate is never shown above an "excellent" one. Halftone candidates go by their likeness to the picture, a
step down the band costing `BAND_LIKENESS` of it: the person asked for their picture as a code, and every halftone
candidate ranked already holds a robust scan margin. Adaptive compute: when no
candidate of a batch passes, the best-looking ones are repaired (module centres nudged,
`generator.core.codes.repair`); when still none passes, another batch is generated, up to `max_batches`. When
the budget ends without a scannable code the result says so plainly.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from generator.core.codes import decision, grids, qr, repair, scan
from generator.core.engines.diffusion import Engine
from generator.core.engines.parameters import GenerationParams

log = logging.getLogger(__name__)
Progress = Callable[[str, float], None]
# A verdict split over processes (`submit_verify`): each part some views (0 the image, 1-6 its captures) and, where it
# has the image, which of its work (`scan.ORIGINAL_PIECES`), as evenly as their costs allow. The image's work is about
# three captures' on a code, and on art that hides its code WeChat's search or the grading alone can cost several
# times a capture. With six processes an image (a 16-core host verifying the one image a CUDA engine hands over): the
# image's fast decoders, its slow decoders and its grading apart, the captures in pairs. With three: the image alone,
# the captures in two halves; with two: the image with its first capture, the other captures.
ALL_PIECES = scan.ORIGINAL_PIECES
SPLITS = {
    6: ((range(0, 1), ("fast",)), (range(0, 1), ("slow",)), (range(0, 1), ("grade",)),
        (range(1, 3), ALL_PIECES), (range(3, 5), ALL_PIECES), (range(5, 7), ALL_PIECES)),
    3: ((range(0, 1), ALL_PIECES), (range(1, 4), ALL_PIECES), (range(4, 7), ALL_PIECES)),
    2: ((range(0, 2), ALL_PIECES), (range(2, 7), ALL_PIECES)),
}
# A passing candidate at or above this scan probability is "excellent", below it "good": the card's words and the
# rank order both come from `scan_band`.
EXCELLENT_SCAN = 0.9
MAX_BATCH_BUDGET = 8  # batches a job may draw before giving up on a scannable code
BANDS = ("excellent", "good", "poor")  # best first
# What a step down the band (excellent to good) costs a passing halftone candidate, in likeness (0-1). Every halftone
# candidate that is ranked passed the verdict and the robust margin (`halftone.make_candidate`), so among them the
# band tells a small difference in safety, often one grading note ("a dim print may lose some modules"), while
# likeness is what the person came for: a job ranked by band first showed four copies at 0 % likeness and hid two at
# 62 % and 53 % of the same scan probability under "Show all". A tenth is about the likeness between two neighbouring
# variants (dots or squares of one size): between near equals the safer code wins, never across a clear difference.
BAND_LIKENESS = 0.10


def scan_band(passed: bool, scan_probability: float, misread: bool = False, cautioned: bool = False) -> str:
    """The scan check in one word, as the generation page shows it: "excellent", "good" or "poor".

    A misread or a failing verdict is never better than "poor", whatever the probability says; a pass with a
    reason to be careful (`cautioned`: the verdict's reasons, e.g. most of the error correction used, a narrow
    quiet zone) is never better than "good", or the word would contradict the sentence beside it.
    """
    if misread or not passed:
        return "poor"
    return "excellent" if scan_probability >= EXCELLENT_SCAN and not cautioned else "good"


@dataclass
class BestOfNConfig:
    """How much compute a request may use."""

    n: int = 8  # candidates per batch, generated in one pipeline call
    max_batches: int = 2  # budget: batches generated before giving up on a scannable code
    repair_top: int = 2  # failing candidates (best-looking first) that repair may touch per batch
    repair: bool = True  # allow repair at all
    threshold: float = scan.DEFAULT_THRESHOLD  # scan probability needed to pass
    model: decision.DecisionModel | None = None  # the verifier's decision model; the shipped one when None
    seed: int | None = None  # first candidate's seed; random when None
    border: int = 4  # quiet zone in modules of the control image
    style: str = "square"  # control image module style
    background: str = "white"  # control image background
    ecc: str = "H"  # error correction of the code
    max_version: int = qr.DEFAULT_MAX_VERSION
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # verifier processes; 1 verifies inline

    def validate(self) -> None:
        if not 1 <= self.n <= 16:
            raise ValueError(f"Candidates per batch must be between 1 and 16, got {self.n}.")
        if not 1 <= self.max_batches <= MAX_BATCH_BUDGET:
            raise ValueError(f"The batch budget must be between 1 and {MAX_BATCH_BUDGET}, got {self.max_batches}.")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"The scan threshold must be between 0 and 1, got {self.threshold}.")
        if self.seed is not None and not 0 <= self.seed < 2**32 - 16 * 8:
            raise ValueError(f"Seed must be between 0 and {2**32 - 129}, got {self.seed}.")


@dataclass
class RankedImage:
    """One generated image with its verdicts and scores."""

    index: int  # position over the whole request (batch * n + position)
    batch: int
    seed: int
    image: Image.Image
    scan: scan.ScanResult
    aesthetic: float | None
    repaired: bool = False
    pixels_changed: float | None = None  # fraction of pixels repair changed
    ssim: float | None = None  # structural similarity to the unrepaired image
    rank: int | None = None
    # The halftone engine (generator.core.engines.halftone): its variant, and fidelity to the input picture outside the
    # constrained module centres; None for diffusion candidates.
    variant: str = ""
    fidelity_ssim: float | None = None
    color_error: float | None = None  # mean absolute difference per channel, 0-255

    @property
    def passed(self) -> bool:
        return self.scan.passed


@dataclass
class BestOfNResult:
    code: qr.QRCode
    control: Image.Image
    candidates: list[RankedImage]  # in rank order
    batches: int
    generation_seconds: float
    scoring_seconds: float
    message: str
    # The halftone engine: its codes scan, but the closest keeps less of the picture than its fidelity floor (the
    # message says so in words). Data, so the job page warns without reading the message; diffusion leaves it False.
    picture_fights: bool = False

    @property
    def scannable(self) -> bool:
        return any(c.passed for c in self.candidates)


_pool: ProcessPoolExecutor | None = None
_pool_size = 0
WARM_HOLD_S = 0.5  # seconds each of `warm_verifier`'s tasks holds its process
_pool_lock = threading.Lock()


def verifier_pool(workers: int) -> Executor | None:
    """The process pool that verifies and repairs candidates, kept for the life of this process; None for 1 worker.

    Processes, not threads: the decoders hold the GIL part of the time and OpenCV's WeChat detector is not
    thread-safe (it corrupted the heap under parallel threads on a 16-core GPU host, so it runs behind a lock
    within one process), so threads left most cores idle while a batch was verified. Each process has its own
    detector. "forkserver": the children never inherit a CUDA context or the weights from the GPU worker.
    """
    global _pool, _pool_size
    workers = max(1, workers)
    if workers == 1:
        return None
    with _pool_lock:
        if _pool is None or _pool_size != workers:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
            context = multiprocessing.get_context("forkserver")
            # The fork server and its processes in a process group of their own (`verifier_group`), so that a stop
            # signalled to the worker's group does not end them while the worker finishes its job.
            context.set_forkserver_preload(["__main__", "generator.core.engines.verifier_group"])
            _pool = ProcessPoolExecutor(
                max_workers=workers, mp_context=context, initializer=_start_verifier, initargs=(os.getpid(),)
            )
            _pool_size = workers
        return _pool


def _start_verifier(parent: int) -> None:
    """In a new verifier process: one OpenCV thread, and exit when the process that made the pool is gone.

    The pool already runs a process per core: OpenCV's own thread pool (a thread per core by default) in each
    of them would put cores x cores threads on the cores while a batch is verified.

    A GPU worker killed with SIGKILL (out of memory, a supervisor's stop) gets no chance to shut its pool down,
    and the pool's processes would otherwise wait on its queue forever, holding their memory.
    """
    import cv2

    cv2.setNumThreads(1)
    # Every reader and the grading loaded here, whichever tasks this process is given later: with a verdict in six
    # parts, a process whose first WeChat or grading part came in a job paid for loading them there (the first timed
    # job on an H100 after the warm-up: its last verdict 0.143 s against 0.053-0.076 s for the next eleven).
    try:
        code = qr.encode("warm-up")
        scan.verify(qr.render_control_image(code, 256), expected=code.content, captures_count=1)
    except Exception:  # a failure here would break the pool for every job; the job's own verify reports it instead
        log.exception("warming a verifier process failed")

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # the pid now belongs to someone else's process: ours is gone
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def warm_verifier(workers: int) -> None:
    """Start the verifier processes and load their decoders now, so the first job does not pay for it."""
    pool = verifier_pool(workers)
    if pool is not None:
        # A task per process, each long enough that no process takes two: the pool starts a process for each task no
        # idle one can take, and each process loads its readers as it starts (`_start_verifier`) before its task.
        list(pool.map(time.sleep, [WARM_HOLD_S] * workers))


def verify_many(
    images: list[Image.Image | np.ndarray], expected: str, threshold: float, workers: int, seed: int = 0,
    model: decision.DecisionModel | None = None,
) -> list[scan.ScanResult]:
    """Verify candidates in parallel processes (see `verifier_pool`), results in input order."""
    return submit_verify(images, expected, threshold, workers, seed, model)()


def submit_verify(
    images: list[Image.Image | np.ndarray], expected: str, threshold: float, workers: int, seed: int = 0,
    model: decision.DecisionModel | None = None,
) -> Callable[[], list[scan.ScanResult]]:
    """Start verifying `images` in the background; the returned callable waits and gives the results in order.

    The caller does other work meanwhile (the aesthetic scores run on the GPU while the CPU verifies). With two,
    three or six processes for each image (a GPU host's 16 cores for a batch of 8, or for the one image at a time a
    CUDA engine hands over as it decodes), each image's views are read in that many processes at once
    (`scan.verify_part` on the parts of `SPLITS`) and the verdict made from the parts (`scan.combine`: the same
    result as `scan.verify`). The last image a CUDA engine hands over is the job's tail: its verdict takes its
    slowest part's time.
    """
    if workers > 1:
        # The verifier reads luminance: a third of an RGB image's bytes to copy to the processes (the same pixels
        # `scan.verify` would convert to), which matters while the parent also scores the images' looks
        images = [np.asarray(image.convert("L")) if isinstance(image, Image.Image) else image for image in images]
    ways = max((n for n in SPLITS if workers >= n * len(images)), default=1)
    if ways == 1:
        verify = functools.partial(scan.verify, expected=expected, threshold=threshold, seed=seed, model=model)
        return _submit([functools.partial(verify, image) for image in images], workers)
    part = functools.partial(scan.verify_part, expected=expected, seed=seed, model=model)
    parts = _submit([functools.partial(part, image, views=views, pieces=pieces)
                     for image in images for views, pieces in SPLITS[ways]], workers)

    def results() -> list[scan.ScanResult]:
        done = parts()
        return [scan.combine(image, expected, done[ways * i : ways * (i + 1)], threshold=threshold, seed=seed,
                             model=model) for i, image in enumerate(images)]

    return results


def _submit(tasks: list[Callable], workers: int) -> Callable[[], list]:
    pool = verifier_pool(workers) if len(tasks) > 1 else None
    if pool is None:
        results = [task() for task in tasks]
        return lambda: results
    futures = [pool.submit(task) for task in tasks]
    return lambda: _results(futures)


def _results(futures: list[Future]) -> list:
    global _pool
    try:
        return [future.result() for future in futures]
    except BrokenProcessPool:
        # A verifier process died (killed, out of memory): this job fails (RQ retries it once) and the next
        # call starts a fresh pool instead of failing forever.
        with _pool_lock:
            _pool = None
        raise


def likeness(fidelity_ssim: float | None, color_error: float | None) -> float | None:
    """How faithful a halftone candidate is to the picture, 0-1, as `rank` orders them: fidelity SSIM less the mean
    colour error as a share of 255, so a greyscale copy of a colour picture comes out below a colour one whose
    luminance is as close. None where there is no fidelity (diffusion candidates). Below 0 for a copy far off in
    colour: not clipped, so such copies still order among themselves (a page shows them as 0 %)."""
    if fidelity_ssim is None:
        return None
    return fidelity_ssim - (color_error or 0.0) / 255


def rank(candidates: list[RankedImage]) -> list[RankedImage]:
    """Order candidates and write ranks 1..N onto them.

    The rule: codes that pass the scan verdict first, always (`scan_band` "poor" last: failing or misread). Then:

    - diffusion (an aesthetic score): by scan-reliability band (excellent, then good), then prettiest. The band
      comes before looks because the page shows the band in words beside the rank and the looks are a predictor's
      guess: "#1 good" above "#2 excellent" would read as a mistake.
    - halftone (no aesthetic score, a likeness): by likeness to the picture less `BAND_LIKENESS` for a "good" band,
      so a grading note does not bury a far more faithful code that scans as well; the page shows the likeness
      beside the band, which says why.

    Ties go to the most scannable, then the first drawn. Likeness: `likeness` (fidelity SSIM less the colour
    error), the figure the job page shows.
    """

    def key(c: RankedImage) -> tuple:
        band = BANDS.index(scan_band(c.passed, c.scan.scan_probability, c.scan.misread, bool(c.scan.reasons)))
        failing = BANDS[band] == "poor"
        faithful = likeness(c.fidelity_ssim, c.color_error)
        aesthetic = c.aesthetic if c.aesthetic is not None else float("-inf")
        if c.aesthetic is None and faithful is not None and not failing:
            # Halftone: the band's cost folded into the likeness, one score
            return (failing, 0, -aesthetic, -(faithful - BAND_LIKENESS * band), -c.scan.scan_probability, c.index)
        fidelity = float("-inf") if faithful is None else faithful
        return (failing, band, -aesthetic, -fidelity, -c.scan.scan_probability, c.index)

    ordered = sorted(candidates, key=key)
    for position, candidate in enumerate(ordered, start=1):
        candidate.rank = position
    return ordered


def repair_many(
    images: list[Image.Image],
    befores: list[scan.ScanResult],
    grid: grids.Grid,
    expected: str,
    threshold: float,
    workers: int,
    margins: tuple[int, ...] = repair.MARGINS,
    model: decision.DecisionModel | None = None,
) -> list[repair.RepairResult]:
    """`repair.repair` for each image, its rounds spread over the verifier processes; the same results.

    A repair tries margins in order, each round starting from the original image, and keeps the first that
    passes. The rounds do not depend on each other, so with processes to spare each image's next few margins
    are tried at once (a wave) and the first passing one in order is kept: what the rounds one by one would
    return, without waiting for each failing round in turn. With as many processes as images it is one by one.
    """
    width = max(1, workers // max(1, len(images)))
    results: list[repair.RepairResult | None] = [None] * len(images)
    open_ = list(range(len(images)))
    for start in range(0, len(margins), width):
        wave = margins[start : start + width]
        tasks = [functools.partial(repair.repair, images[i], grid, expected, threshold=threshold, before=befores[i],
                                   margins=(margin,), model=model) for i in open_ for margin in wave]
        attempts = _submit(tasks, workers)()
        still_open = []
        for k, i in enumerate(open_):
            tried = attempts[k * len(wave) : (k + 1) * len(wave)]
            results[i] = next((a for a in tried if a.passed), tried[-1])  # the verdict and the robust margin
            if not results[i].passed:
                still_open.append(i)
        open_ = still_open
        if not open_:
            break
    return results


def _repair_best_looking(candidates: list[RankedImage], grid: grids.Grid, expected: str, config: BestOfNConfig):
    failing = [c for c in candidates if not c.passed]
    failing.sort(key=lambda c: -(c.aesthetic if c.aesthetic is not None else float("-inf")))
    chosen = failing[: config.repair_top]
    if not chosen:
        return
    fixes = repair_many([c.image for c in chosen], [c.scan for c in chosen], grid, expected, config.threshold,
                        config.workers, model=config.model)
    for candidate, fixed in zip(chosen, fixes, strict=True):
        if fixed.after.passed:
            candidate.image = fixed.image
            candidate.scan = fixed.after
            candidate.repaired = True
            candidate.pixels_changed = fixed.pixels_changed_fraction
            candidate.ssim = fixed.ssim


def best_of_n(
    engine: Engine,
    content: str,
    params: GenerationParams,
    config: BestOfNConfig | None = None,
    on_progress: Progress | None = None,
    init_image: Image.Image | None = None,
    on_images: Callable[[list[Image.Image]], None] | None = None,
) -> BestOfNResult:
    """Make QR art for `content`: batches of candidates, verified, scored, repaired if needed, ranked.

    Args:
        engine (`Engine`): the warm pipelines.
        content (`str`): what the code must carry (validated; too long gives `qr.ContentError`).
        params (`GenerationParams`): prompt and sampling parameters (validated).
        config (`BestOfNConfig`, *optional*): batch size, budget, repair, threshold, seed, control style.
        on_progress (`Callable[[str, float], None]`, *optional*): called with a stage ("generating",
            "scoring", "repairing") and the overall fraction done, 0-1. Raising `pipeline.Cancelled` from
            it stops the request.
        init_image (`PIL.Image.Image`, *optional*): for img2img (`params.strength` set), the picture to
            start from; the control image otherwise.
        on_images (`Callable[[list[PIL.Image.Image]], None]`, *optional*): called first with the control image
            (`[control]`, before the engine starts), then with each batch's images as soon as they are decoded (a
            few at a time, in order), before they are verified: the caller can start encoding them meanwhile (the
            control image's PNG, begun after the last verdict, was ~12 ms of a whole job's tail on the GPU host);
            repair replaces the images it changes, so a candidate's final image may be another object.

    Returns:
        A `BestOfNResult` with every candidate in rank order.
    """
    # 1. Check inputs
    config = config or BestOfNConfig()
    config.validate()
    params.validate()
    report = on_progress or (lambda stage, fraction: None)
    code = qr.encode(content, ecc=config.ecc, max_version=config.max_version)
    control = qr.render_control_image(code, params.size, config.border, config.style, config.background)
    if on_images is not None:
        on_images([control])
    grid = grids.grid_from_code(code, params.size, config.border)
    first_seed = config.seed if config.seed is not None else secrets.randbelow(2**31)

    candidates: list[RankedImage] = []
    generation = scoring = 0.0
    batch = 0
    for batch in range(config.max_batches):
        # 2. One batched generation; progress spans this batch's share of the budget
        share = 1.0 / config.max_batches
        seeds = [first_seed + batch * config.n + i for i in range(config.n)]

        def on_step(step: int, total: int, batch: int = batch, share: float = share) -> None:
            report("generating", (batch + 0.8 * step / total) * share)

        # 3. Verify each group of candidates in CPU processes as soon as it is decoded (the rest decode meanwhile),
        # then score their looks on the engine's device while the last ones are read
        verifying: list[Callable[[], list[scan.ScanResult]]] = []
        handed: list[Image.Image] = []

        def on_decoded(group: list[Image.Image], handed: list = handed, verifying: list = verifying) -> None:
            handed.extend(group)
            if on_images is not None:
                on_images(group)
            verifying.append(submit_verify(group, code.content, config.threshold, config.workers,
                                           model=config.model))

        started = time.perf_counter()
        images = engine.generate(control, params, seeds, init_image=init_image, on_step=on_step,
                                 on_decoded=on_decoded)
        generation += time.perf_counter() - started
        if len(handed) < len(images):  # an engine that hands over nothing as it decodes
            on_decoded(images[len(handed):])
        report("scoring", (batch + 0.85) * share)
        started = time.perf_counter()
        aesthetics = engine.score_aesthetics(images)
        scans = [result for results in verifying for result in results()]
        new = [
            RankedImage(batch * config.n + i, batch, seeds[i], images[i], scans[i], aesthetics[i])
            for i in range(len(images))
        ]
        # 4. Nothing scans: repair the best-looking candidates before paying for another batch
        if config.repair and not any(c.passed for c in new):
            report("repairing", (batch + 0.9) * share)
            _repair_best_looking(new, grid, code.content, config)
        scoring += time.perf_counter() - started
        candidates.extend(new)
        if any(c.passed for c in new):
            break

    # 5. Rank and say plainly how it went
    ordered = rank(candidates)
    report("done", 1.0)
    passing = sum(c.passed for c in ordered)
    if passing:
        message = f"{passing} of {len(ordered)} candidates scan."
    else:
        message = (
            f"No scannable code after {batch + 1} batch(es) of {config.n}: none of {len(ordered)} candidates "
            "passed the scan check, even after repair. Try the More scannable look, a simpler prompt, or a shorter "
            "link (or, under Advanced, a higher conditioning scale or an earlier control start)."
        )
    return BestOfNResult(code, control, ordered, batch + 1, generation, scoring, message)
