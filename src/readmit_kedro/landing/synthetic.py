"""Synthetic stand-in for the UCI diabetes extract: same 50 columns and value formats, a real signal.

Why it exists: the real file cannot be downloaded everywhere and must never enter git, yet every
pipeline, test and demo needs data of the right shape, at any size (1M+ rows for load tests).

How it works: a small simulation over latent time (days since 1999-01-01). New patients arrive as a
Poisson stream; each has a hidden frailty ``z`` and fixed race, gender, payer and birth date. Every
encounter draws its columns from the real file's marginals (``synthetic_marginals``, counted once
from the UCI file; no row was copied), with frailty, age and the patient's own history shifting the
clinical ones. The ``readmitted`` label is a logistic function of what a model can see (prior
inpatient/emergency visits, stay, discharge disposition, primary diagnosis, insulin, age) plus the
hidden frailty, and a ``<30``/``>30`` label schedules the patient's next encounter after
discharge (within 30 days, or later), so repeat patients and the label agree the way they should.

Rows come out sorted by ``encounter_id`` (issued in latent time order), one window of latent time
at a time, so memory stays flat whatever the number of rows. Output is a pure function of
``(rows, seed)``. The rows are clean (every value is one the real file could hold); tests of bad
input build their own dirty rows.
"""

from __future__ import annotations

import gzip
import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from readmit_kedro.io.atomic import atomic_write
from readmit_kedro.landing import synthetic_marginals as m  # the tables: m.RACE, m.DIAG, m.B0_30
from readmit_kedro.schema import RAW_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "SyntheticFile",
    "iter_synthetic_blocks",
    "synthetic_csv_chunks",
    "synthetic_frame",
    "write_synthetic_csv_gz",
]

DEFAULT_ROWS = 101_766  # the size of the real file
DEFAULT_SEED = 42

_DAYS = 3653  # 1999-01-01 .. 2008-12-31
_WINDOW_ROWS = 8_000  # encounters per latent-time window: bounds memory, keeps numpy batches large
_ENCOUNTERS_PER_PATIENT = 1.42  # the real file: 101,766 encounters of 71,518 patients
_FIRST_ENCOUNTER_ID = 12_522  # the real file's smallest encounter_id
_NEWLINE = "\r\n"  # the UCI file has CRLF line endings


@dataclass(frozen=True)
class SyntheticFile:
    """What was written: enough to fill the raw layer's sidecar without re-reading the file."""

    path: Path
    rows: int
    sha256_uncompressed: str


def synthetic_frame(rows: int = 1_000, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """A small synthetic raw extract in memory, every column ``str`` as read from the real file.

    Identical to reading back ``write_synthetic_csv_gz(path, rows, seed)`` with ``dtype=str,
    keep_default_na=False``; meant for unit tests (the whole frame is held in memory).
    """
    import pandas as pd  # only here: the streaming paths (acquire, the CLI) do not need pandas

    blocks = list(iter_synthetic_blocks(rows, seed))
    data = {c: [v for block in blocks for v in block[c]] for c in RAW_COLUMNS}
    return pd.DataFrame(data, columns=list(RAW_COLUMNS), dtype=str)


def iter_synthetic_blocks(rows: int, seed: int = DEFAULT_SEED) -> Iterator[dict[str, list[str]]]:
    """Yield the rows as column blocks (column name -> values as written), in encounter_id order."""
    if rows < 1:
        raise ValueError(f"rows must be >= 1, got {rows}")
    yield from _Simulator(rows, seed).blocks()


def synthetic_csv_chunks(rows: int, seed: int = DEFAULT_SEED) -> Iterator[bytes]:
    """The CSV bytes (header first, CRLF like the UCI file), one block of rows per chunk."""
    yield (",".join(RAW_COLUMNS) + _NEWLINE).encode()
    for block in iter_synthetic_blocks(rows, seed):
        lines = map(",".join, zip(*(block[c] for c in RAW_COLUMNS), strict=True))
        yield (_NEWLINE.join(lines) + _NEWLINE).encode()


def write_synthetic_csv_gz(
    path: str | Path, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, *, compresslevel: int = 1
) -> SyntheticFile:
    """Stream ``rows`` synthetic rows into a gzip CSV at ``path`` (atomic; never all in memory).

    The gzip header carries no name or mtime, so the same ``(rows, seed)`` gives the same bytes.
    Level 1 by default: at 1M rows, level 6 would spend more time compressing than simulating.
    """
    digest = hashlib.sha256()
    with (
        atomic_write(path) as handle,
        gzip.GzipFile(
            filename="", mode="wb", fileobj=handle, compresslevel=compresslevel, mtime=0
        ) as gz,
    ):
        for chunk in synthetic_csv_chunks(rows, seed):
            gz.write(chunk)
            digest.update(chunk)
    return SyntheticFile(Path(path), rows, digest.hexdigest())


# --------------------------------------------------------------------------------------------------
# The simulation


@dataclass
class _Cohort:
    """Patients due for an encounter, one entry per (patient, encounter), as parallel arrays."""

    nbr: np.ndarray  # patient_nbr
    z: np.ndarray  # hidden frailty, N(0, 1)
    race: np.ndarray  # index into m.RACE
    gender: np.ndarray  # index into m.GENDER
    payer: np.ndarray  # index into m.PAYER_CODE
    birth: np.ndarray  # latent day of birth
    prev: np.ndarray  # (n, 3) latent admission days of the last three encounters, NaN if none
    t: np.ndarray  # latent admission day of this encounter

    def __len__(self) -> int:
        return len(self.t)

    def take(self, index: np.ndarray) -> _Cohort:
        return _Cohort(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def empty() -> _Cohort:
        none, ints = np.empty(0), np.empty(0, dtype=np.int64)
        return _Cohort(ints, none, ints, ints, ints, none, np.empty((0, 3)), none)

    @staticmethod
    def concat(parts: list[_Cohort]) -> _Cohort:
        return _Cohort(
            *(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_Cohort))
        )


class _Simulator:
    """One run of the simulation; ``blocks()`` yields the rows in encounter_id order."""

    def __init__(self, rows: int, seed: int) -> None:
        self.rows = rows
        self.rng = np.random.default_rng(seed)
        per_day = rows / _DAYS
        self.window = float(np.clip(_WINDOW_ROWS / per_day, 1.0, _DAYS))
        self.arrivals_per_day = per_day / _ENCOUNTERS_PER_PATIENT
        # patient_nbr = 9 * (1 + (a*k + b) mod p) for the k-th patient: unique (p prime > patients),
        # scattered like the real ids (multiples of 9, up to ~190M for the real size).
        self.modulus = _next_prime(max(21_055_000, 2 * rows))
        self.mult = int(self.rng.integers(1, self.modulus))
        self.shift = int(self.rng.integers(0, self.modulus))
        self.patients = 0
        self.last_id = _FIRST_ENCOUNTER_ID - 6
        self.clock = 0.0
        self.pending = _Cohort.empty()  # booked returns, not yet due

    def blocks(self) -> Iterator[dict[str, list[str]]]:
        emitted = 0
        while emitted < self.rows:
            block = self._window()
            n = min(len(block["encounter_id"]), self.rows - emitted)
            if n:
                yield {c: v[:n] for c, v in block.items()}
                emitted += n

    def _window(self) -> dict[str, list[str]]:
        """All encounters admitted in the next window of latent time, sorted by admission."""
        start, end = self.clock, self.clock + self.window
        self.clock = end
        due = self.pending.t < end
        batch = _Cohort.concat([self.pending.take(due), self._new_patients(start, end)])
        self.pending = self.pending.take(~due)
        parts: list[dict[str, np.ndarray]] = []
        while len(batch):  # a return can fall inside the same window: loop until none does
            columns, returns = self._encounters(batch)
            parts.append(columns)
            inside = returns.t < end
            self.pending = _Cohort.concat([self.pending, returns.take(~inside)])
            batch = returns.take(inside)
        if not parts:
            return {c: [] for c in RAW_COLUMNS}
        order = np.argsort(np.concatenate([p.pop("_t") for p in parts]), kind="stable")
        block = {c: np.concatenate([p[c] for p in parts])[order] for c in parts[0]}
        # Ids are issued in admission order, with gaps like the real ones (multiples of 6).
        steps = np.ceil(self.rng.lognormal(math.log(265.0), 1.0, len(order))).astype(np.int64)
        block["encounter_id"] = self.last_id + 6 * np.cumsum(steps)
        self.last_id = int(block["encounter_id"][-1])
        return {c: _as_text(block[c]) for c in RAW_COLUMNS}

    def _new_patients(self, start: float, end: float) -> _Cohort:
        rng = self.rng
        n = int(rng.poisson(self.arrivals_per_day * (end - start)))
        k = np.arange(self.patients, self.patients + n, dtype=np.int64)
        self.patients += n
        age = m.AGE_LOWER[m.AGE.draw(rng, n)] + rng.uniform(0.0, 10.0, n)
        t = np.sort(rng.uniform(start, end, n))
        return _Cohort(
            nbr=9 * (1 + (self.mult * k + self.shift) % self.modulus),
            z=rng.standard_normal(n),
            race=m.RACE.draw(rng, n),
            gender=m.GENDER.draw(rng, n),
            payer=m.PAYER_CODE.draw(rng, n),
            birth=t - age * 365.25,
            prev=np.full((n, 3), np.nan),
            t=t,
        )

    def _encounters(self, c: _Cohort) -> tuple[dict[str, np.ndarray], _Cohort]:
        """Draw one encounter per cohort entry; return its columns and the booked returns."""
        rng, n, z = self.rng, len(c), c.z
        # Frail patients have more encounters, so frailty is standardised over encounters, not
        # patients: that keeps the marginals below equal to the real ones.
        score = (z - m.Z_ENCOUNTER_MEAN) / m.Z_ENCOUNTER_SD
        age = (c.t - c.birth) / 365.25
        with np.errstate(invalid="ignore"):
            recent = np.sum(c.t[:, None] - c.prev <= 365.0, axis=1)  # NaN compares False

        def linked(rho: float) -> np.ndarray:
            """Uniforms whose normal scores correlate ``rho`` with frailty (Gaussian copula)."""
            return _norm_cdf(rho * score + math.sqrt(1.0 - rho * rho) * rng.standard_normal(n))

        stay = m.TIME_IN_HOSPITAL.index(linked(0.35))
        labs = m.NUM_LAB_PROCEDURES.index(linked(0.15))
        procedures = m.NUM_PROCEDURES.draw(rng, n)
        medications = m.NUM_MEDICATIONS.index(linked(0.30))
        outpatient = m.NUMBER_OUTPATIENT.index(linked(0.30))
        emergency = m.NUMBER_EMERGENCY.index(linked(0.40))
        # Prior inpatient visits: at least the ones this simulation itself produced in the year.
        inpatient = np.maximum(m.INPATIENT_BASE.ints[m.INPATIENT_BASE.index(linked(0.55))], recent)
        n_diagnoses = m.NUMBER_DIAGNOSES.index(linked(0.25))
        adm_type = m.ADMISSION_TYPE_ID.draw(rng, n)
        adm_source = np.empty(n, dtype=object)
        for i, table in enumerate(m.SOURCE_GIVEN_TYPE):
            rows = adm_type == i
            adm_source[rows] = table.values[table.draw(rng, int(rows.sum()))]
        discharge = _discharge(rng, score, age)

        diags = [table.draw(rng, n) for table in m.DIAG]
        nd = m.NUMBER_DIAGNOSES.ints[n_diagnoses]
        missing = [
            rng.random(n) < 0.0002,
            (nd < 2) | (rng.random(n) < 0.0013),
            (nd < 3) | (rng.random(n) < 0.0018),
        ]
        diag_text = [
            np.where(absent, "?", table.values[d])
            for table, d, absent in zip(m.DIAG, diags, missing, strict=True)
        ]
        group = np.where(missing[0], m.OTHER_GROUP, m.DIAG[0].groups[diags[0]])

        drugs = {name: table.draw(rng, n) for name, table in m.DRUGS.items()}
        stacked = np.stack(list(drugs.values()))
        taken = (stacked > 0).any(axis=0)
        adjusted = (stacked >= 2).any(axis=0)  # Up or Down
        change = adjusted | (taken & (rng.random(n) < 0.381))

        los = m.TIME_IN_HOSPITAL.ints[stay]
        emer = m.NUMBER_EMERGENCY.ints[emergency]
        outp = m.NUMBER_OUTPATIENT.ints[outpatient]
        dis = m.DISCHARGE_DISPOSITION_ID.ints[discharge]
        logit30 = (
            m.B0_30
            + 0.45 * np.minimum(inpatient, 6)
            + 0.20 * np.minimum(emer, 5)
            + 0.05 * np.minimum(outp, 5)
            + 0.035 * (los - 4)
            + 0.002 * (age - 65.0)
            + m.DISCHARGE_EFFECT[dis]
            + m.DIAG_GROUP_EFFECT[group]
            + m.INSULIN_EFFECT[drugs["insulin"]]
            + 0.10 * taken
            + 0.35 * z
        )
        logit_later = (
            m.B0_LATER
            + 0.20 * np.minimum(inpatient, 6)
            + 0.10 * np.minimum(emer, 5)
            + 0.10 * np.minimum(outp, 5)
            + 0.15 * taken
            + 0.30 * z
        )
        dead = np.isin(dis, m.DEATH_IDS)
        u = rng.random(n)
        p30 = _sigmoid(logit30)
        label = np.where(u < p30, 2, np.where(u < p30 + (1 - p30) * _sigmoid(logit_later), 1, 0))
        label[dead] = 0

        # Book the next encounter: after discharge (admission + stay) plus a gap that fits the label.
        # Frail patients come back more often: few patients with many encounters, as in the real file.
        p_back = np.minimum(
            0.95,
            m.RETURN_PROBABILITY[label] * np.exp(m.RETURN_FRAILTY * z - m.RETURN_FRAILTY**2 / 2),
        )
        back = (rng.random(n) < p_back) & ~dead
        gap = np.select(
            [label == 2, label == 1],
            [
                30.0 * rng.beta(1.2, 2.2, n),
                31.0 + np.minimum(rng.lognormal(math.log(120), 0.9, n), 2500),
            ],
            31.0 + rng.lognormal(math.log(400), 0.8, n),
        )
        returns = c.take(back)
        returns.prev = np.column_stack([c.t, c.prev[:, :2]])[back]
        returns.t = (c.t + los + gap)[back]

        columns = {
            "_t": c.t,
            "patient_nbr": c.nbr,
            "race": m.RACE.values[c.race],
            "gender": m.GENDER.values[c.gender],
            "age": m.AGE_BRACKETS[np.clip(age // 10, 0, 9).astype(np.int64)],
            "weight": m.WEIGHT.values[m.WEIGHT.draw(rng, n)],
            "admission_type_id": m.ADMISSION_TYPE_ID.values[adm_type],
            "discharge_disposition_id": m.DISCHARGE_DISPOSITION_ID.values[discharge],
            "admission_source_id": adm_source,
            "time_in_hospital": m.TIME_IN_HOSPITAL.values[stay],
            "payer_code": m.PAYER_CODE.values[c.payer],
            "medical_specialty": m.MEDICAL_SPECIALTY.values[m.MEDICAL_SPECIALTY.draw(rng, n)],
            "num_lab_procedures": m.NUM_LAB_PROCEDURES.values[labs],
            "num_procedures": m.NUM_PROCEDURES.values[procedures],
            "num_medications": m.NUM_MEDICATIONS.values[medications],
            "number_outpatient": m.NUMBER_OUTPATIENT.values[outpatient],
            "number_emergency": m.NUMBER_EMERGENCY.values[emergency],
            "number_inpatient": inpatient,
            "diag_1": diag_text[0],
            "diag_2": diag_text[1],
            "diag_3": diag_text[2],
            "number_diagnoses": m.NUMBER_DIAGNOSES.values[n_diagnoses],
            "max_glu_serum": m.MAX_GLU_SERUM.values[m.MAX_GLU_SERUM.draw(rng, n)],
            "A1Cresult": m.A1CRESULT.values[m.A1CRESULT.draw(rng, n)],
            **{name: m.DRUG_TEXT[index] for name, index in drugs.items()},
            "change": np.where(change, "Ch", "No"),
            "diabetesMed": np.where(taken, "Yes", "No"),
            "readmitted": m.LABELS[label],
        }
        return columns, returns


def _discharge(rng: np.random.Generator, score: np.ndarray, age: np.ndarray) -> np.ndarray:
    """Discharge disposition: the real marginal, tilted towards care/death for frail, old patients."""
    decades = (age[:, None] - 65.0) / 10.0
    tilt = m.DISCHARGE_FRAILTY[None, :] * score[:, None] + m.DISCHARGE_AGE[None, :] * decades
    weights = m.DISCHARGE_BASE[None, :] * np.exp(tilt)
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(score))[:, None] * cum[:, -1:]
    return np.minimum((cum <= u).sum(axis=1), cum.shape[1] - 1)


def _as_text(values: np.ndarray) -> list[str]:
    """Python strings, as the CSV writer joins them (object/str arrays are strings already)."""
    return values.tolist() if values.dtype.kind in "OU" else values.astype(str).tolist()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 26.2.17, error < 1e-7), so numpy alone suffices."""
    t = 1.0 / (1.0 + 0.2316419 * np.abs(x))
    poly = 1.330274429
    for coefficient in (-1.821255978, 1.781477937, -0.356563782, 0.319381530):
        poly = coefficient + t * poly
    poly = t * poly
    tail = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi) * poly
    return np.where(x >= 0, 1.0 - tail, tail)


def _next_prime(n: int) -> int:
    candidate = n | 1
    while any(candidate % d == 0 for d in range(3, math.isqrt(candidate) + 1, 2)):
        candidate += 2
    return candidate
