"""Constants of the kernel's ODP uAPI (``include/uapi/linux/openvswitch.h``).

Names follow the header with the ``OVS_<GROUP>_`` prefix dropped, so
``OVS_KEY_ATTR_ETHERNET`` is ``KeyAttr.ETHERNET``.  Values that only Open
vSwitch's userspace datapath understands (``TUNNEL_PUSH`` and kin) are here
too, so that text written for it parses; the kernel refuses them.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

DATAPATH_FAMILY = "ovs_datapath"
VPORT_FAMILY = "ovs_vport"
FLOW_FAMILY = "ovs_flow"
PACKET_FAMILY = "ovs_packet"
METER_FAMILY = "ovs_meter"
CT_LIMIT_FAMILY = "ovs_ct_limit"

DATAPATH_MCGROUP = "ovs_datapath"
VPORT_MCGROUP = "ovs_vport"
FLOW_MCGROUP = "ovs_flow"
METER_MCGROUP = "ovs_meter"

DATAPATH_VERSION = 2
VPORT_VERSION = 1
FLOW_VERSION = 1
PACKET_VERSION = 1
METER_VERSION = 1
CT_LIMIT_VERSION = 1

# The port number of the datapath's own internal port ("local" port).
LOCAL_PORT = 0


class DpCmd(IntEnum):
    NEW = 1
    DEL = 2
    GET = 3
    SET = 4


class DpAttr(IntEnum):
    NAME = 1
    UPCALL_PID = 2
    STATS = 3
    MEGAFLOW_STATS = 4
    USER_FEATURES = 5
    PAD = 6
    MASKS_CACHE_SIZE = 7
    PER_CPU_PIDS = 8
    IFINDEX = 9


class DpFeature(IntFlag):
    UNALIGNED = 1 << 0
    VPORT_PIDS = 1 << 1
    TC_RECIRC_SHARING = 1 << 2
    DISPATCH_UPCALL_PER_CPU = 1 << 3


class PacketCmd(IntEnum):
    MISS = 1
    ACTION = 2
    EXECUTE = 3


class PacketAttr(IntEnum):
    PACKET = 1
    KEY = 2
    ACTIONS = 3
    USERDATA = 4
    EGRESS_TUN_KEY = 5
    UNUSED1 = 6
    UNUSED2 = 7
    PROBE = 8
    MRU = 9
    LEN = 10
    HASH = 11
    UPCALL_PID = 12


class VportCmd(IntEnum):
    NEW = 1
    DEL = 2
    GET = 3
    SET = 4


class VportType(IntEnum):
    UNSPEC = 0
    NETDEV = 1
    INTERNAL = 2
    GRE = 3
    VXLAN = 4
    GENEVE = 5
    ERSPAN = 107
    IP6ERSPAN = 108
    IP6GRE = 109
    GTPU = 110
    BAREUDP = 111
    SRV6 = 112


class VportAttr(IntEnum):
    PORT_NO = 1
    TYPE = 2
    NAME = 3
    OPTIONS = 4
    UPCALL_PID = 5
    STATS = 6
    PAD = 7
    IFINDEX = 8
    NETNSID = 9
    UPCALL_STATS = 10


class VportUpcallAttr(IntEnum):
    SUCCESS = 0
    FAIL = 1


class TunnelOptAttr(IntEnum):
    """OVS_TUNNEL_ATTR_*: options of tunnel vports."""

    DST_PORT = 1
    EXTENSION = 2


class VxlanExt(IntEnum):
    GBP = 1
    GPE = 8


class FlowCmd(IntEnum):
    NEW = 1
    DEL = 2
    GET = 3
    SET = 4


class FlowAttr(IntEnum):
    KEY = 1
    ACTIONS = 2
    STATS = 3
    TCP_FLAGS = 4
    USED = 5
    CLEAR = 6
    MASK = 7
    PROBE = 8
    UFID = 9
    UFID_FLAGS = 10
    PAD = 11


class UfidFlag(IntFlag):
    OMIT_KEY = 1 << 0
    OMIT_MASK = 1 << 1
    OMIT_ACTIONS = 1 << 2


class KeyAttr(IntEnum):
    ENCAP = 1
    PRIORITY = 2
    IN_PORT = 3
    ETHERNET = 4
    VLAN = 5
    ETHERTYPE = 6
    IPV4 = 7
    IPV6 = 8
    TCP = 9
    UDP = 10
    ICMP = 11
    ICMPV6 = 12
    ARP = 13
    ND = 14
    SKB_MARK = 15
    TUNNEL = 16
    SCTP = 17
    TCP_FLAGS = 18
    DP_HASH = 19
    RECIRC_ID = 20
    MPLS = 21
    CT_STATE = 22
    CT_ZONE = 23
    CT_MARK = 24
    CT_LABELS = 25
    CT_ORIG_TUPLE_IPV4 = 26
    CT_ORIG_TUPLE_IPV6 = 27
    NSH = 28
    PACKET_TYPE = 29
    ND_EXTENSIONS = 30
    TUNNEL_INFO = 31  # kernel-internal, never on the wire
    IPV6_EXTHDRS = 32


class TunnelKeyAttr(IntEnum):
    ID = 0
    IPV4_SRC = 1
    IPV4_DST = 2
    TOS = 3
    TTL = 4
    DONT_FRAGMENT = 5
    CSUM = 6
    OAM = 7
    GENEVE_OPTS = 8
    TP_SRC = 9
    TP_DST = 10
    VXLAN_OPTS = 11
    IPV6_SRC = 12
    IPV6_DST = 13
    PAD = 14
    ERSPAN_OPTS = 15
    IPV4_INFO_BRIDGE = 16
    GTPU_OPTS = 17  # userspace datapath only


class FragType(IntEnum):
    NONE = 0
    FIRST = 1
    LATER = 2


class NshKeyAttr(IntEnum):
    BASE = 1
    MD1 = 2
    MD2 = 3


class CtState(IntFlag):
    NEW = 0x01
    ESTABLISHED = 0x02
    RELATED = 0x04
    REPLY_DIR = 0x08
    INVALID = 0x10
    TRACKED = 0x20
    SRC_NAT = 0x40
    DST_NAT = 0x80


class SampleAttr(IntEnum):
    PROBABILITY = 1
    ACTIONS = 2


class UserspaceAttr(IntEnum):
    PID = 1
    USERDATA = 2
    EGRESS_TUN_PORT = 3
    ACTIONS = 4


class HashAlg(IntEnum):
    L4 = 0
    SYM_L4 = 1


class CtAttr(IntEnum):
    COMMIT = 1
    ZONE = 2
    MARK = 3
    LABELS = 4
    HELPER = 5
    NAT = 6
    FORCE_COMMIT = 7
    EVENTMASK = 8
    TIMEOUT = 9


class NatAttr(IntEnum):
    SRC = 1
    DST = 2
    IP_MIN = 3
    IP_MAX = 4
    PROTO_MIN = 5
    PROTO_MAX = 6
    PERSISTENT = 7
    PROTO_HASH = 8
    PROTO_RANDOM = 9


class CheckPktLenAttr(IntEnum):
    PKT_LEN = 1
    ACTIONS_IF_GREATER = 2
    ACTIONS_IF_LESS_EQUAL = 3


class DecTtlAttr(IntEnum):
    ACTION = 1


class PsampleAttr(IntEnum):
    GROUP = 1
    COOKIE = 2


class ActionAttr(IntEnum):
    OUTPUT = 1
    USERSPACE = 2
    SET = 3
    PUSH_VLAN = 4
    POP_VLAN = 5
    SAMPLE = 6
    RECIRC = 7
    HASH = 8
    PUSH_MPLS = 9
    POP_MPLS = 10
    SET_MASKED = 11
    CT = 12
    TRUNC = 13
    PUSH_ETH = 14
    POP_ETH = 15
    CT_CLEAR = 16
    PUSH_NSH = 17
    POP_NSH = 18
    METER = 19
    CLONE = 20
    CHECK_PKT_LEN = 21
    ADD_MPLS = 22
    DEC_TTL = 23
    DROP = 24
    PSAMPLE = 25
    # Open vSwitch's userspace datapath only; the kernel refuses these.
    TUNNEL_PUSH = 26
    TUNNEL_POP = 27
    LB_OUTPUT = 28


class MeterCmd(IntEnum):
    FEATURES = 1
    SET = 2
    DEL = 3
    GET = 4


class MeterAttr(IntEnum):
    ID = 1
    KBPS = 2
    STATS = 3
    BANDS = 4
    USED = 5
    CLEAR = 6
    MAX_METERS = 7
    MAX_BANDS = 8
    PAD = 9


class BandAttr(IntEnum):
    TYPE = 1
    RATE = 2
    BURST = 3
    STATS = 4


class MeterBandType(IntEnum):
    DROP = 1


class CtLimitCmd(IntEnum):
    SET = 1
    DEL = 2
    GET = 3


class CtLimitAttr(IntEnum):
    ZONE_LIMIT = 1


# Ethertypes the codec needs to reason about.
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_RARP = 0x8035
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
ETH_P_MPLS_UC = 0x8847
ETH_P_MPLS_MC = 0x8848
ETH_P_NSH = 0x894F

VLAN_CFI = 0x1000

# IPv6 extension headers (next-header numbers), which a walk to the transport skips.
NEXTHDR_HOP = 0
NEXTHDR_ROUTING = 43
NEXTHDR_FRAGMENT = 44
NEXTHDR_AUTH = 51
NEXTHDR_NONE = 59
NEXTHDR_DEST = 60
IPV6_EXT_HEADERS = frozenset(
    {NEXTHDR_HOP, NEXTHDR_ROUTING, NEXTHDR_FRAGMENT, NEXTHDR_AUTH, NEXTHDR_NONE, NEXTHDR_DEST}
)
