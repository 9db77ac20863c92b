"""The Emotiv EPOC+ montage: channel order, 10-20 positions, analysis rate and units.

Every source delivers samples in :data:`EPOC_CHANNELS` order, in microvolts, at
:data:`SFREQ_HZ`; :func:`unit_scale_to_uv` is the one table of units every source
converts with.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The 14 EPOC+ electrodes in the headset's (and EmotivPRO's) order.
EPOC_CHANNELS: tuple[str, ...] = (
    "AF3", "F7", "F3", "FC5", "T7", "P7", "O1",
    "O2", "P8", "T8", "FC6", "F4", "F8", "AF4",
)  # fmt: skip

#: Analysis rate of every stream inside Duygu, in Hz.
SFREQ_HZ: float = 128.0

#: Signal-quality levels of a channel, best first: the words of both the quality computed
#: from the EEG (:mod:`processing.quality`) and the headset's own 0-4 contact scale
#: (:mod:`acquisition.sources.quality`, 4 = good ... 0 = no data).
QUALITY_LEVELS: tuple[str, ...] = ("good", "fair", "poor", "bad", "no data")

#: Unit of every sample inside Duygu.
UNIT = "µV"

_UNIT_SCALES_TO_UV: dict[str, float] = {
    "": 1.0,
    "microvolts": 1.0, "microvolt": 1.0, "uv": 1.0, "µv": 1.0, "μv": 1.0,
    "volts": 1e6, "volt": 1e6, "v": 1e6,
    "millivolts": 1e3, "millivolt": 1e3, "mv": 1e3,
    "nanovolts": 1e-3, "nanovolt": 1e-3, "nv": 1e-3,
}  # fmt: skip


def unit_scale_to_uv(unit: str | None) -> float | None:
    """Factor turning values in ``unit`` into µV, or ``None`` for an unknown unit.

    Accepts names and symbols (``volts``, ``V``, ``millivolts``, ``mV``,
    ``microvolts``, ``uV``, ``µV``, ``nanovolts``) and MNE's integer exponents of volts
    (``"0"`` = V, ``"-6"`` = µV), which mne-lsl's ``PlayerLSL`` writes. A missing or
    empty unit means µV, as EmotivPRO streams.
    """
    key = (unit or "").strip().lower()
    if key in _UNIT_SCALES_TO_UV:
        return _UNIT_SCALES_TO_UV[key]
    try:
        exponent = int(key)
    except ValueError:
        return None
    if not -12 <= exponent <= 3:
        return None
    return float(10.0 ** (exponent + 6))


#: Frontal pairs (left, right) used for asymmetry features.
ASYMMETRY_PAIRS: tuple[tuple[str, str], ...] = (
    ("AF3", "AF4"), ("F3", "F4"), ("F7", "F8"), ("FC5", "FC6"),
)  # fmt: skip

#: Aliases seen in files and streams for the EPOC labels (upper-case keys).
ALIASES: dict[str, str] = {"P": "P7", "T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}


@dataclass(frozen=True)
class Electrode:
    """One electrode of the montage with its 10-20 position.

    ``x_m, y_m, z_m`` are head coordinates in metres (RAS: x to the right ear, y to the
    nose, z up) on a sphere of radius 0.095 m, as in MNE's ``standard_1020`` montage.
    ``azimuth_deg`` and ``radius`` place it on a flat head map (0 deg = nose, clockwise;
    radius 1 is the head outline at the ear line).
    """

    name: str
    x_m: float
    y_m: float
    z_m: float
    azimuth_deg: float
    radius: float


def _electrode(name: str, azimuth_deg: float, polar_deg: float) -> Electrode:
    import math

    r_head = 0.095
    az = math.radians(azimuth_deg)
    pol = math.radians(polar_deg)
    x = r_head * math.sin(pol) * math.sin(az)
    y = r_head * math.sin(pol) * math.cos(az)
    z = r_head * math.cos(pol)
    return Electrode(name, x, y, z, azimuth_deg, polar_deg / 90.0)


# Spherical 10-20 coordinates: azimuth from the nose (clockwise, degrees) and polar angle
# from the vertex (degrees; 90 = the Fpz-T7-Oz-T8 circumference).
MONTAGE: dict[str, Electrode] = {
    e.name: e
    for e in (
        _electrode("AF3", -23.0, 74.0),
        _electrode("F7", -54.0, 92.0),
        _electrode("F3", -39.0, 60.0),
        _electrode("FC5", -69.0, 77.0),
        _electrode("T7", -90.0, 92.0),
        _electrode("P7", -126.0, 92.0),
        _electrode("O1", -162.0, 92.0),
        _electrode("O2", 162.0, 92.0),
        _electrode("P8", 126.0, 92.0),
        _electrode("T8", 90.0, 92.0),
        _electrode("FC6", 69.0, 77.0),
        _electrode("F4", 39.0, 60.0),
        _electrode("F8", 54.0, 92.0),
        _electrode("AF4", 23.0, 74.0),
    )
}


def canonical_label(label: str) -> str | None:
    """Return the EPOC label a stream or file label stands for, or ``None``.

    Matching ignores case, surrounding blanks, an ``EEG`` prefix (``"EEG AF3"``) and a
    note in brackets (``"AF3 (board Fz)"``, how recordings from other devices name the
    channel used for AF3), and knows the aliases in :data:`ALIASES` (the UCI eye-state CSV
    calls P7 ``P``).
    """
    key = label.strip().upper().split("(")[0].strip()  # "AF3 (board Fz)" -> "AF3"
    for prefix in ("EEG ", "EEG-", "EEG_"):
        if key.startswith(prefix):
            key = key[len(prefix):].strip()
    key = key.split("-")[0].strip()  # "AF3-REF" -> "AF3"
    for name in EPOC_CHANNELS:
        if key == name.upper():
            return name
    return ALIASES.get(key)


def match_channels(labels: list[str] | tuple[str, ...]) -> list[int] | None:
    """Indices into ``labels`` of the 14 EPOC channels in EPOC order, or ``None``.

    Returns ``None`` when any EPOC channel is missing; :func:`missing_channels` names them.
    """
    found: dict[str, int] = {}
    for i, label in enumerate(labels):
        name = canonical_label(label)
        if name is not None and name not in found:
            found[name] = i
    if len(found) < len(EPOC_CHANNELS):
        return None
    return [found[name] for name in EPOC_CHANNELS]


def missing_channels(labels: list[str] | tuple[str, ...]) -> list[str]:
    """The EPOC channels that ``labels`` lacks, in EPOC order."""
    present = {canonical_label(label) for label in labels}
    return [name for name in EPOC_CHANNELS if name not in present]
