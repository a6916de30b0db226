"""tenfold.net: the shared networking layer of tarzan, scallop and nicoffload.

* Codecs (ours; aiortc serves only as the tests' independent reference): RTP with RFC 8285
  header extensions (:mod:`~tenfold.net.rtp`), the AV1 dependency descriptor
  (:mod:`~tenfold.net.av1dd`), compound RTCP (:mod:`~tenfold.net.rtcp`,
  :mod:`~tenfold.net.tcc`), STUN (:mod:`~tenfold.net.stun`) and RFC 7983 demultiplexing.
* Mahimahi traces (:mod:`~tenfold.net.trace`) and a link emulator with ``mm-link``
  semantics behind the :class:`Link` protocol: :class:`SimLink` on ``core.sim`` and
  :class:`RelayLink`, a real-time UDP relay between network namespaces
  (:mod:`~tenfold.net.netns`).
* A 30 fps video model (:mod:`~tenfold.net.video`) and its receiver with NACK, a jitter
  buffer and WebRTC freezes (:mod:`~tenfold.net.playout`).

Only ``tenfold.core`` and ``tenfold.errors`` are imported; ``tenfold net ...`` verbs live in
:mod:`tenfold.net.cli`.
"""

from tenfold.net.av1dd import DependencyDescriptor, FrameDependencies, TemplateStructure
from tenfold.net.call import CallResult, run_video_call
from tenfold.net.demux import classify
from tenfold.net.link import Delivery, Link, LinkConfig, LinkResult, Packet, SimLink, cbr_schedule
from tenfold.net.netns import NetnsError, Testbed, require_root
from tenfold.net.playout import FreezeDetector, PlayoutConfig, QoE, RenderedFrame, VideoReceiver, is_freeze
from tenfold.net.relay import RelayLink, RelaySession
from tenfold.net.rtcp import (
    Bye,
    Nack,
    Pli,
    RawRtcp,
    ReceiverReport,
    Remb,
    ReportBlock,
    Sdes,
    SdesChunk,
    SenderReport,
    TransportCC,
    decode_compound,
    encode_compound,
)
from tenfold.net.rtp import HeaderExtension, RtpPacket
from tenfold.net.stun import StunAttr, StunClass, StunMessage
from tenfold.net.trace import (
    SPLIT,
    Trace,
    TraceStats,
    chunk_trace,
    load_cooked,
    load_trace,
    rescale_trace,
    split_paths,
    synthetic_trace,
    to_cooked,
    write_trace,
)
from tenfold.net.video import EncodedFrame, EncoderConfig, FrameDescriptor, Packetizer, VideoEncoder

__all__ = [
    "SPLIT",
    "Bye",
    "CallResult",
    "Delivery",
    "DependencyDescriptor",
    "EncodedFrame",
    "EncoderConfig",
    "FrameDependencies",
    "FrameDescriptor",
    "FreezeDetector",
    "HeaderExtension",
    "Link",
    "LinkConfig",
    "LinkResult",
    "Nack",
    "NetnsError",
    "Packet",
    "Packetizer",
    "PlayoutConfig",
    "Pli",
    "QoE",
    "RawRtcp",
    "ReceiverReport",
    "RelayLink",
    "RelaySession",
    "Remb",
    "RenderedFrame",
    "ReportBlock",
    "RtpPacket",
    "Sdes",
    "SdesChunk",
    "SenderReport",
    "SimLink",
    "StunAttr",
    "StunClass",
    "StunMessage",
    "TemplateStructure",
    "Testbed",
    "Trace",
    "TraceStats",
    "TransportCC",
    "VideoEncoder",
    "VideoReceiver",
    "cbr_schedule",
    "chunk_trace",
    "classify",
    "decode_compound",
    "encode_compound",
    "is_freeze",
    "load_cooked",
    "load_trace",
    "require_root",
    "rescale_trace",
    "run_video_call",
    "split_paths",
    "synthetic_trace",
    "to_cooked",
    "write_trace",
]
