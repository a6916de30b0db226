"""The AV1 RTP dependency descriptor header extension (AV1 RTP spec, appendix A).

An SFU forwards or suppresses AV1 packets by the descriptor alone, without decoding video:
the mandatory 3 bytes say whether the packet starts or ends a frame, which frame template
(and so which spatial/temporal layer) the frame uses, and its 16-bit frame number. A key
frame's descriptor also carries the *template dependency structure* (A.8.2.1): per template
its layer, decode target indications (DTIs), frame diffs and chain diffs, which later
descriptors refer to by template id alone; the template index is
``(template_id - template_id_offset) mod 64``, which is why an SFU must read the offset
instead of assuming ``id mod 5`` (scallop spec 2.2).

:class:`DependencyDescriptor` keeps the bytes after the mandatory fields verbatim in
``extended`` (so decoding then encoding is exact) and parses them on demand with
:meth:`DependencyDescriptor.dependencies`; :meth:`DependencyDescriptor.build` writes them,
with :meth:`TemplateStructure.l1t3` giving libwebrtc's L1T3 structure. Bit layout of the
mandatory fields (A.8.1)::

    start_of_frame (1) | end_of_frame (1) | frame_dependency_template_id (6) | frame_number (16)
"""

from __future__ import annotations

from dataclasses import dataclass

from tenfold.core.api import api
from tenfold.errors import DecodeError

__all__ = [
    "DTI_DISCARDABLE",
    "DTI_NOT_PRESENT",
    "DTI_REQUIRED",
    "DTI_SWITCH",
    "DependencyDescriptor",
    "FrameDependencies",
    "TemplateStructure",
]

_MANDATORY = 3
DTI_NOT_PRESENT, DTI_DISCARDABLE, DTI_SWITCH, DTI_REQUIRED = 0, 1, 2, 3


class _Reader:
    """MSB-first bit reader with the spec's f(n) and ns(n)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def f(self, n: int) -> int:
        if self.pos + n > 8 * len(self.data):
            raise DecodeError(f"dependency descriptor is truncated: needs bit {self.pos + n}, has {8 * len(self.data)}")
        value = 0
        for _ in range(n):
            value = (value << 1) | (self.data[self.pos >> 3] >> (7 - (self.pos & 7)) & 1)
            self.pos += 1
        return value

    def ns(self, n: int) -> int:
        w = n.bit_length()
        m = (1 << w) - n
        v = self.f(w - 1)
        return v if v < m else (v << 1) - m + self.f(1)


class _Writer:
    def __init__(self) -> None:
        self.bits: list[int] = []

    def f(self, n: int, value: int) -> None:
        if not 0 <= value < (1 << n):
            raise DecodeError(f"dependency descriptor field value {value} does not fit {n} bits")
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ns(self, n: int, value: int) -> None:
        w = n.bit_length()
        m = (1 << w) - n
        if value < m:
            self.f(w - 1, value)
        else:
            self.f(w - 1, (value + m) >> 1)
            self.f(1, (value + m) & 1)

    def to_bytes(self) -> bytes:
        bits = self.bits + [0] * (-len(self.bits) % 8)
        return bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))


@dataclass(frozen=True)
class TemplateStructure:
    """The template dependency structure (A.8.2.1), one entry per template in each tuple."""

    template_id_offset: int
    decode_targets: int
    spatial_ids: tuple[int, ...]
    temporal_ids: tuple[int, ...]
    dtis: tuple[tuple[int, ...], ...]
    """Per template, per decode target: 0 not present, 1 discardable, 2 switch, 3 required."""
    fdiffs: tuple[tuple[int, ...], ...]
    chains: int = 0
    protected_by: tuple[int, ...] = ()
    """Per decode target, the chain protecting it (empty without chains)."""
    chain_fdiffs: tuple[tuple[int, ...], ...] = ()
    resolutions: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def l1t3(cls, template_id_offset: int = 0) -> TemplateStructure:
        """libwebrtc's L1T3: templates 0-1 are T0 (0 = key), 2 is T1, 3-4 are T2; one chain."""
        return cls(template_id_offset, 3, (0, 0, 0, 0, 0), (0, 0, 1, 2, 2),
                   ((2, 2, 2), (2, 2, 2), (0, 1, 2), (0, 0, 1), (0, 0, 1)),
                   ((), (4,), (2,), (1,), (1,)), 1, (0, 0, 0), ((0,), (4,), (2,), (1,), (3,)))

    @property
    def templates(self) -> int:
        return len(self.spatial_ids)

    def _write(self, w: _Writer) -> None:
        w.f(6, self.template_id_offset)
        w.f(5, self.decode_targets - 1)
        for i in range(self.templates):  # template_layers(): next_layer_idc per template
            if i == self.templates - 1:
                w.f(2, 3)
            elif self.spatial_ids[i + 1] == self.spatial_ids[i]:
                step = self.temporal_ids[i + 1] - self.temporal_ids[i]
                if step not in (0, 1):
                    raise DecodeError(f"template {i + 1} temporal id must equal or follow template {i}'s")
                w.f(2, step)
            elif self.spatial_ids[i + 1] == self.spatial_ids[i] + 1 and self.temporal_ids[i + 1] == 0:
                w.f(2, 2)
            else:
                raise DecodeError(f"template {i + 1} does not follow template {i} in layer order")
        for row in self.dtis:
            for dti in row:
                w.f(2, dti)
        for diffs in self.fdiffs:
            for diff in diffs:
                w.f(1, 1)
                w.f(4, diff - 1)
            w.f(1, 0)
        w.ns(self.decode_targets + 1, self.chains)
        if self.chains:
            for chain in self.protected_by:
                w.ns(self.chains, chain)
            for diffs in self.chain_fdiffs:
                for diff in diffs:
                    w.f(4, diff)
        w.f(1, self.resolutions is not None)
        for width, height in self.resolutions or ():
            w.f(16, width - 1)
            w.f(16, height - 1)

    @classmethod
    def _read(cls, r: _Reader) -> TemplateStructure:
        offset = r.f(6)
        dts = r.f(5) + 1
        spatial, temporal = [0], [0]
        while (idc := r.f(2)) != 3:
            if len(spatial) >= 64:
                raise DecodeError("dependency descriptor structure lists more than 64 templates")
            s, t = spatial[-1], temporal[-1]
            spatial.append(s + 1 if idc == 2 else s)
            temporal.append(0 if idc == 2 else t + idc)
        n = len(spatial)
        dtis = tuple(tuple(r.f(2) for _ in range(dts)) for _ in range(n))
        fdiffs = []
        for _ in range(n):
            diffs = []
            while r.f(1):
                diffs.append(r.f(4) + 1)
            fdiffs.append(tuple(diffs))
        chains = r.ns(dts + 1)
        protected = tuple(r.ns(chains) for _ in range(dts)) if chains else ()
        chain_fdiffs = tuple(tuple(r.f(4) for _ in range(chains)) for _ in range(n)) if chains else ()
        resolutions = None
        if r.f(1):
            resolutions = tuple((r.f(16) + 1, r.f(16) + 1) for _ in range(max(spatial) + 1))
        return cls(offset, dts, tuple(spatial), tuple(temporal), dtis, tuple(fdiffs), chains, protected,
                   chain_fdiffs, resolutions)


@dataclass(frozen=True)
class FrameDependencies:
    """What a descriptor says about its frame, resolved against the structure in effect."""

    structure: TemplateStructure
    template_index: int
    spatial_id: int
    temporal_id: int
    dtis: tuple[int, ...]
    fdiffs: tuple[int, ...]
    chain_fdiffs: tuple[int, ...]
    active_decode_targets: int
    """Bitmask of active decode targets (all, unless the descriptor says otherwise)."""


@api(stability="beta")
@dataclass(frozen=True)
class DependencyDescriptor:
    """A dependency descriptor; :meth:`encode` and :meth:`decode` are exact inverses."""

    start_of_frame: bool
    end_of_frame: bool
    template_id: int
    frame_number: int
    extended: bytes = b""
    """Bytes after the mandatory fields (extended descriptor fields), kept verbatim."""

    def __post_init__(self) -> None:
        if not 0 <= self.template_id <= 63:
            raise DecodeError(f"dependency descriptor template id {self.template_id}; allowed 0..63")
        if not 0 <= self.frame_number <= 0xFFFF:
            raise DecodeError(f"dependency descriptor frame number {self.frame_number}; allowed 0..65535")

    @property
    def structure_present(self) -> bool:
        """template_dependency_structure_present_flag: a key frame carries the structure."""
        return bool(self.extended) and bool(self.extended[0] & 0x80)

    @property
    def template_id_offset(self) -> int | None:
        """The attached structure's template_id_offset, or None without a structure."""
        if not self.structure_present:
            return None
        r = _Reader(self.extended)
        r.f(5)
        return r.f(6)

    def dependencies(self, structure: TemplateStructure | None = None) -> FrameDependencies:
        """Parse the extended fields (A.8.2) against the attached structure, else ``structure``
        (the latest one received, which the caller keeps per stream)."""
        r = _Reader(self.extended)
        flags = r.f(5) if self.extended else 0
        if flags & 0x10:
            structure = TemplateStructure._read(r)
        if structure is None:
            raise DecodeError("dependency descriptor refers to a template structure that has not been received")
        active = (1 << structure.decode_targets) - 1
        if flags & 0x08:
            active = r.f(structure.decode_targets)
        index = (self.template_id + 64 - structure.template_id_offset) % 64
        if index >= structure.templates:
            raise DecodeError(f"dependency descriptor template index {index} is past the "
                              f"{structure.templates} templates of the structure")
        dtis = structure.dtis[index]
        fdiffs = structure.fdiffs[index]
        chain_fdiffs = structure.chain_fdiffs[index] if structure.chains else ()
        if flags & 0x04:
            dtis = tuple(r.f(2) for _ in range(structure.decode_targets))
        if flags & 0x02:
            custom = []
            while size := r.f(2):
                custom.append(r.f(4 * size) + 1)
            fdiffs = tuple(custom)
        if flags & 0x01:
            chain_fdiffs = tuple(r.f(8) for _ in range(structure.chains))
        return FrameDependencies(structure, index, structure.spatial_ids[index], structure.temporal_ids[index],
                                 dtis, fdiffs, chain_fdiffs, active)

    @classmethod
    def build(cls, *, start_of_frame: bool, end_of_frame: bool, template_index: int, frame_number: int,
              structure: TemplateStructure, attach_structure: bool = False,
              active_decode_targets: int | None = None) -> DependencyDescriptor:
        """A descriptor using template ``template_index`` of ``structure``; key frames attach it."""
        if not 0 <= template_index < structure.templates:
            raise DecodeError(f"template index {template_index}; allowed 0..{structure.templates - 1}")
        extended = b""
        if attach_structure or active_decode_targets is not None:
            w = _Writer()
            w.f(5, (int(attach_structure) << 4) | (int(active_decode_targets is not None) << 3))
            if attach_structure:
                structure._write(w)
            if active_decode_targets is not None:
                w.f(structure.decode_targets, active_decode_targets)
            extended = w.to_bytes()
        template_id = (template_index + structure.template_id_offset) % 64
        return cls(start_of_frame, end_of_frame, template_id, frame_number, extended)

    def encode(self) -> bytes:
        first = (int(self.start_of_frame) << 7) | (int(self.end_of_frame) << 6) | self.template_id
        return bytes([first]) + self.frame_number.to_bytes(2, "big") + self.extended

    @classmethod
    def decode(cls, data: bytes) -> DependencyDescriptor:
        if len(data) < _MANDATORY:
            raise DecodeError(f"dependency descriptor is {len(data)} bytes; the mandatory fields need {_MANDATORY}")
        return cls(start_of_frame=bool(data[0] & 0x80), end_of_frame=bool(data[0] & 0x40),
                   template_id=data[0] & 0x3F, frame_number=int.from_bytes(data[1:3], "big"),
                   extended=bytes(data[3:]))
