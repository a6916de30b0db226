"""AV1 dependency descriptor: captured Chrome descriptors (L1T2, L2T2) parse to the values
an independent parser expects, and our writer reproduces them byte for byte."""

from __future__ import annotations

import pytest

from tenfold.errors import DecodeError
from tenfold.net.av1dd import DependencyDescriptor, TemplateStructure

# Chrome-captured descriptors, as published with an independent C++ parser's tests.
DD1 = bytes.fromhex("80000180011ea85141010c04fc03bc")            # L1T2, templates 0-2
DD2 = bytes.fromhex("8600b580c11ea85141010c09fc077c")            # L1T2, templates 6-8
DD3 = bytes.fromhex("0800d8")                                    # no structure
DD4 = bytes.fromhex("c000018003187aaaf130a0a014d1413823046008642222265009f0077013f00ef0")  # L2T2
S, D, R, N = 2, 1, 3, 0


def _rebuild(raw: bytes) -> bytes:
    dd = DependencyDescriptor.decode(raw)
    deps = dd.dependencies()
    return DependencyDescriptor.build(start_of_frame=dd.start_of_frame, end_of_frame=dd.end_of_frame,
                                      template_index=deps.template_index, frame_number=dd.frame_number,
                                      structure=deps.structure, attach_structure=True).encode()


def test_l1t2_structure_fields() -> None:
    dd = DependencyDescriptor.decode(DD1)
    assert (dd.start_of_frame, dd.end_of_frame, dd.template_id, dd.frame_number) == (True, False, 0, 1)
    s = dd.dependencies().structure
    assert s.templates == 3 and s.decode_targets == 2
    assert s.temporal_ids == (0, 0, 1) and s.spatial_ids == (0, 0, 0)
    assert s.dtis == ((S, S), (S, S), (N, D))
    assert s.fdiffs == ((), (2,), (1,))
    assert s.resolutions == ((320, 240),)
    assert _rebuild(DD1) == DD1


def test_offset_maps_template_ids_to_indices() -> None:
    dd2 = DependencyDescriptor.decode(DD2)
    assert dd2.template_id_offset == 6
    structure = dd2.dependencies().structure
    dd3 = DependencyDescriptor.decode(DD3)
    assert (dd3.start_of_frame, dd3.end_of_frame, dd3.template_id, dd3.frame_number) == (False, False, 8, 216)
    deps = dd3.dependencies(structure)
    assert (deps.template_index, deps.temporal_id, deps.dtis, deps.fdiffs) == (2, 1, (N, D), (1,))
    assert _rebuild(DD2) == DD2
    with pytest.raises(DecodeError, match="has not been received"):
        dd3.dependencies()


def test_l2t2_structure_fields() -> None:
    dd = DependencyDescriptor.decode(DD4)
    s = dd.dependencies().structure
    assert s.templates == 6 and s.decode_targets == 4
    assert s.spatial_ids == (0, 0, 0, 1, 1, 1) and s.temporal_ids == (0, 0, 1, 0, 0, 1)
    assert s.dtis == ((S, S, S, S), (S, S, R, R), (N, D, N, R), (N, N, S, S), (N, N, S, S), (N, N, N, D))
    assert s.fdiffs == ((), (4,), (2,), (1,), (4, 1), (2, 1))
    assert _rebuild(DD4) == DD4


@pytest.mark.parametrize("offset", [0, 7, 62])
def test_l1t3_build_and_parse(offset: int) -> None:
    structure = TemplateStructure.l1t3(offset)
    key = DependencyDescriptor.build(start_of_frame=True, end_of_frame=True, template_index=0, frame_number=1,
                                     structure=structure, attach_structure=True)
    back = DependencyDescriptor.decode(key.encode())
    assert back == key
    assert back.template_id_offset == offset
    assert back.dependencies().structure == structure
    layers = []
    for index in range(5):
        delta = DependencyDescriptor.build(start_of_frame=True, end_of_frame=True, template_index=index,
                                           frame_number=2 + index, structure=structure)
        assert len(delta.encode()) == 3
        assert delta.template_id == (index + offset) % 64
        layers.append(delta.dependencies(structure).temporal_id)
    assert layers == [0, 0, 1, 2, 2]  # scallop: {0, 1} = T0, 2 = T1, {3, 4} = T2


def test_active_decode_targets_and_truncation() -> None:
    structure = TemplateStructure.l1t3()
    dd = DependencyDescriptor.build(start_of_frame=True, end_of_frame=False, template_index=2, frame_number=9,
                                    structure=structure, active_decode_targets=0b011)
    assert DependencyDescriptor.decode(dd.encode()).dependencies(structure).active_decode_targets == 0b011
    key = DependencyDescriptor.build(start_of_frame=True, end_of_frame=True, template_index=0, frame_number=1,
                                     structure=structure, attach_structure=True).encode()
    with pytest.raises(DecodeError, match="dependency descriptor is truncated"):
        DependencyDescriptor.decode(key[:6]).dependencies()
