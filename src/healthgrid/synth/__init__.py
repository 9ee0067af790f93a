"""The synthetic region generator: ``healthgrid synth --size ... --seed N``.

Each context contributes its share (``<context>/synth.py``), called here in dependency
order inside one transaction: a failed run leaves the database as it was. Deterministic
for a seed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

SIZES = ("tiny", "small", "city", "province")


@dataclass
class SynthReport:
    size: str
    seed: int
    seconds: float = 0.0
    counts: dict[str, float] = field(default_factory=dict)  # row counts, and a few rates
    demo_logins: list[Any] = field(default_factory=list)


def _surveillance(engine: Engine, report: SynthReport, *, size: str, seed: int, info: dict[str, Any],
                  progress: Callable[[str, int, int], None] | None) -> None:
    """Years of report cards and feed counts with injected outbreaks, then the daily
    detection run over that history as the worker would have, each signal answered by a
    simulated duty epidemiologist (so the response KPIs mean something)."""
    from sqlalchemy.orm import Session

    from ..surveillance import detection
    from ..surveillance import synth as surveillance_synth

    with engine.begin() as conn:
        report.counts.update(surveillance_synth.generate(conn, size=size, seed=seed, info=info, progress=progress))
    with Session(bind=engine, info=dict(info), expire_on_commit=False) as session:
        days = surveillance_synth.synthetic_days(session)
        if days is None:
            return
        out = detection.backfill(session, *days, after_day=surveillance_synth.responder(seed=seed))
        session.commit()
    report.counts.update({f"surv_{k}": v for k, v in out.items() if isinstance(v, int)})


def generate_region(
    engine: Engine, *, size: str = "tiny", seed: int = 1,
    progress: Callable[[str, int, int], None] | None = None, info: dict[str, Any],
) -> SynthReport:
    """``info``: the session info of ``security.session_info(settings)`` (the keyring the
    demo users' personal data is encrypted with)."""
    from ..errors import Invalid
    from ..registry import synth as registry_synth

    if size not in SIZES:
        raise Invalid("SYN-002", f"unknown size {size!r}; expected one of {', '.join(SIZES)}",
                      {"field": "size"})
    report = SynthReport(size=size, seed=seed)
    started = time.perf_counter()
    with engine.begin() as conn:
        report.counts.update(registry_synth.generate(conn, size=size, seed=seed, progress=progress))
    from sqlalchemy.orm import Session

    from ..patients import synth as patients_synth
    from ..security import synth as security_synth

    with engine.begin() as conn:
        report.counts.update(patients_synth.generate(conn, size=size, seed=seed, info=info, progress=progress))
    from ..scheduling import synth as scheduling_synth

    with Session(bind=engine, info=dict(info), expire_on_commit=False) as session:
        report.demo_logins = security_synth.create_demo_users(session, seed=seed)
        report.counts["users"] = len(report.demo_logins)
        report.counts.update(patients_synth.register_visits(session, seed=seed))
        demo_patient = scheduling_synth.register_demo_resident(session, seed=seed)
    with engine.begin() as conn:
        report.counts.update(scheduling_synth.generate(conn, size=size, seed=seed, info=info, progress=progress,
                                                       demo_patient_id=demo_patient))
    from ..referrals import synth as referrals_synth

    with engine.begin() as conn:
        report.counts.update(referrals_synth.generate(conn, size=size, seed=seed, info=info, progress=progress,
                                                      link_places=scheduling_synth.link_referrals))
    from ..results import synth as results_synth

    with engine.begin() as conn:
        report.counts.update(results_synth.generate(conn, size=size, seed=seed, info=info, progress=progress))
    _surveillance(engine, report, size=size, seed=seed, info=info, progress=progress)
    report.seconds = time.perf_counter() - started
    return report
