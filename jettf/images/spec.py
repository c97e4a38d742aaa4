"""`ImageSpec`: everything that defines a jet image, as a frozen, hashable dataclass.

Two equal specs give identical images; the spec (its JSON and fingerprint) is
saved with every dataset and every model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from typing import Optional, Tuple

from .channels import CHANNELS
from .preprocess import CENTERS, DEFINITIONS, NORMALIZATIONS, ROTATIONS

__all__ = ["ImageSpec"]

MAX_NPIX = 46_340  # flat pixel indices npix**2 must fit in int32


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """A jet image: grid, channels and the preprocessing applied to the constituents.

    Attributes:
        npix: pixels per side; the image is ``npix x npix``, axis 1 = eta, axis 2 = phi.
        extent: half-width of the image in both eta and phi (radians); 0.4 covers
            [-0.4, 0.4]^2. Must be below pi so the image never wraps in phi.
        channels: channel names, see :data:`jettf.images.channels.CHANNELS`.
        center: ``None`` (constituents relative to the jet axis), ``"pt_centroid"``,
            ``"hardest"`` or ``"leading_subjet"`` (see :mod:`jettf.images.preprocess`).
        rotate: ``None``, ``"principal_axis"`` or ``"subjet"``: rotate the constituents
            about the image centre so that axis points along +eta.
        flip: reflect phi -> -phi where needed so the half with more pt lies at phi > 0.
        normalize: ``None`` or ``"l1"`` (each channel divided by its sum over the image).

    What a model does with the image afterwards (standardization, 002's crop, resizing) is
    not part of the image: see :class:`jettf.images.ImagePreparation`.
    """

    npix: int
    extent: float
    channels: Tuple[str, ...] = ("pt",)
    center: Optional[str] = None
    rotate: Optional[str] = None
    flip: bool = False
    normalize: Optional[str] = None

    def __post_init__(self):
        npix, extent, channels = self.npix, self.extent, self.channels
        if isinstance(npix, bool) or not isinstance(npix, numbers.Integral) or not 1 <= npix <= MAX_NPIX:
            raise ValueError(f"ImageSpec.npix: expected a positive int <= {MAX_NPIX}, got {npix!r}")
        if isinstance(extent, bool) or not isinstance(extent, numbers.Real) or not 0 < extent < math.pi:
            raise ValueError(f"ImageSpec.extent: expected a half-width in (0, pi) radians, got {extent!r}")
        if isinstance(channels, str):
            channels = (channels,)
        if not isinstance(channels, (tuple, list)) or not channels:
            raise ValueError(f"ImageSpec.channels: expected a non-empty tuple of channel names, got {channels!r}")
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            raise ValueError(
                f"ImageSpec.channels: unknown channel(s) {unknown}; expected names from {sorted(CHANNELS)}"
            )
        if len(set(channels)) != len(channels):
            raise ValueError(f"ImageSpec.channels: duplicate channel names in {list(channels)}")
        _check_choice("center", self.center, CENTERS)
        _check_choice("rotate", self.rotate, ROTATIONS)
        _check_choice("normalize", self.normalize, NORMALIZATIONS)
        flip = False if self.flip is None else self.flip
        if not isinstance(flip, bool):
            raise ValueError(f"ImageSpec.flip: expected True, False or None, got {self.flip!r}")
        object.__setattr__(self, "npix", int(npix))
        object.__setattr__(self, "extent", float(extent))
        object.__setattr__(self, "channels", tuple(channels))
        object.__setattr__(self, "flip", flip)

    # ------------------------------------------------------------- properties
    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def shape(self) -> Tuple[int, int, int]:
        """Rendered image shape ``(npix, npix, C)``."""
        return (self.npix, self.npix, self.n_channels)

    def channel_units(self) -> list:
        """The unit of each channel's pixel values, e.g. ``GeV``, or ``fraction of the image's pt`` with L1
        normalization (000's pT_rel)."""
        if self.normalize == "l1":
            return [f"fraction of the image's {c}" for c in self.channels]
        return [CHANNELS[c].unit for c in self.channels]

    @property
    def pixel_width(self) -> float:
        """Pixel side in eta and phi (radians)."""
        return 2.0 * self.extent / self.npix

    # ---------------------------------------------------------- serialization
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ImageSpec":
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"ImageSpec.from_dict: unknown field(s) {unknown}; expected fields from {names}")
        missing = [n for n in ("npix", "extent") if n not in d]
        if missing:
            raise ValueError(f"ImageSpec.from_dict: required field(s) {missing} missing")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ImageSpec":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"ImageSpec.from_json: not valid JSON ({err})") from None
        if not isinstance(d, dict):
            raise ValueError(f"ImageSpec.from_json: expected a JSON object, got {type(d).__name__}")
        return cls.from_dict(d)

    def fingerprint(self) -> str:
        """16 hex digits identifying the images this spec renders.

        Hashes the spec together with the renderer's fixed definitions
        (binning convention, subjet algorithm), so a change of definition
        changes every fingerprint.
        """
        payload = {"spec": self.to_dict(), "definitions": DEFINITIONS}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ---------------------------------------------------------------- presets
    @classmethod
    def ensemble(cls) -> "ImageSpec":
        """299x299 pt images over [-0.4, 0.4]^2 around the jet axis (000, Bassa et al., section 2).

        The paper's intensity is pT_rel = pt / jet_pt; this renders pt in GeV
        (divide by the jet pt, or use normalize="l1", for a per-jet scale).
        """
        return cls(npix=299, extent=0.4, channels=("pt",))

    @classmethod
    def effnet_s(cls, npix: int = 40) -> "ImageSpec":
        """(pt, mass, energy) images over [-1.2, 1.2]^2 centred on the hardest constituent (002, section 2.2).

        002 then crops the standardized image to its central 80% (35 -> 28, 40 -> 32): the
        training preset's ``crop=0.8`` (:class:`jettf.images.ImagePreparation`).
        """
        return cls(npix=npix, extent=1.2, channels=("pt", "mass", "energy"), center="hardest")

    @classmethod
    def quark_gluon(cls) -> "ImageSpec":
        """33x33 images over [-0.4, 0.4]^2 centred on the pt centroid, in colour: charged pt,
        neutral pt, charged multiplicity (Komiske, Metodiev, Schwartz, JHEP 01 (2017) 110; 001, section 5.3)."""
        return cls(
            npix=33, extent=0.4, channels=("charged_pt", "neutral_pt", "charged_multiplicity"), center="pt_centroid"
        )


def _check_choice(field: str, value, choices) -> None:
    if value is not None and value not in choices:
        raise ValueError(f"ImageSpec.{field}: expected None or one of {list(choices)}, got {value!r}")
