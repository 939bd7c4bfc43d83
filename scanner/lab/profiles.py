"""The lab's device profiles and cloud endpoints: the ground truth a correct scan must reach.

Facts (models, firmware strings, ports, cloud host names) follow shared/reference/protocols.md
and clouds.md. Where the public record has nothing (ULUCU's camera side, the unbranded
sales-office box) the profile says so in ``notes`` and the manifest marks what a scan can and
cannot observe.

Categories (result-document vocabulary): face-analytics, picture-upload, video-cloud,
vendor-management, passenger-flow, web, payment.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CloudEndpoint:
    """One server in the fake internet."""

    host: str
    port: int
    kind: str  # https-sink | http-sink | tcp-json | tcp-config | mqtt | mqtts | udp-p2p | tcp-relay
    operator: str
    category: str
    no_dns: bool = False  # the device reaches it by an address pushed in config, not by DNS


@dataclass(frozen=True)
class CloudUse:
    """How a device uses a cloud endpoint."""

    host: str
    port: int
    purpose: str  # heartbeat | snapshots | video | config | telemetry | browsing | payment
    configured: bool = True  # visible in the device's own configuration (self-audit)
    what: str = ""  # what is sent: pictures, events, video, status


@dataclass(frozen=True)
class Profile:
    key: str
    label: str
    vendor: str
    model: str
    firmware: str
    device_type: str  # camera | nvr | printer | nas | pc | pos
    is_camera: bool
    face_capable: bool
    oui: str
    builder: str  # "module:function" run inside the node process
    clouds: tuple[CloudUse, ...] = ()
    expected_severity: str | None = None  # high | medium | low | None (no finding)
    expected_kinds: tuple[str, ...] = ()
    face_capture_enabled: bool = False
    brand: str | None = None  # brand on the box when different from the hardware maker
    services: tuple[str, ...] = ()  # "proto/port" a scan can reach
    multicast: tuple[str, ...] = ()  # discovery protocols it answers (netns only)
    notes: str = ""
    firmware_build: str = ""  # build date when the vendor reports it apart from the version (Dahua)
    username: str = "admin"
    lock_after: int | None = None
    clock_skew_s: int = 0
    scan_observable: dict[str, bool] = field(default_factory=dict)  # field -> can a scan see it pre-auth
    l2_only: tuple[str, ...] = ()  # facts only layer 2 reveals ("found": no open port; "vendor": OUI only)


CLOUDS: tuple[CloudEndpoint, ...] = (
    # Hikvision / EZVIZ (clouds.md 1a: litedev TCP 8666 config, MQTT 31006 to a pushed address,
    # TCP relay 7760 for live view)
    CloudEndpoint("litedev.hik-connect.com", 8666, "tcp-config", "Hik-Connect (Hikvision)", "vendor-management"),
    CloudEndpoint("mqtt.hik-connect.lab", 31006, "mqtt", "Hik-Connect (Hikvision)", "vendor-management",
                  no_dns=True),
    CloudEndpoint("relay.hik-connect.lab", 7760, "tcp-relay", "Hik-Connect (Hikvision)", "video-cloud",
                  no_dns=True),
    # Picture push target configured in ISAPI httpHosts: an object store bucket.
    CloudEndpoint("storeface-pic.oss-cn-hangzhou.aliyuncs.com", 443, "https-sink", "Alibaba Cloud OSS",
                  "picture-upload"),
    # Dahua P2P (UDP 8800 DHGET/DHPOST signalling then PTCP relay)
    CloudEndpoint("www.easy4ipcloud.com", 8800, "udp-p2p", "Dahua Easy4IP", "video-cloud"),
    # Face analytics API (Tencent Cloud IAI)
    CloudEndpoint("iai.tencentcloudapi.com", 443, "https-sink", "Tencent Cloud face recognition",
                  "face-analytics"),
    # ULUCU: device entry TCP 29023 JSON heartbeat every 20 s; pictures to UpYun.
    CloudEndpoint("entry.device.serv.ulucu.com", 29023, "tcp-json", "ULUCU", "passenger-flow"),
    CloudEndpoint("v0.api.upyun.com", 80, "http-sink", "ULUCU picture cloud (UpYun)", "picture-upload"),
    # The unbranded sales-office face box's private cloud (no signature knows it).
    CloudEndpoint("snap.anchang-cloud.example", 443, "https-sink", "(unknown private cloud)", "unknown"),
    # Uniview EZCloud
    CloudEndpoint("en.ezcloud.uniview.com", 443, "https-sink", "Uniview EZCloud", "video-cloud"),
    # Xiongmai / XMEye (plain HTTP on 8086, DNS through hard-coded outside resolvers)
    CloudEndpoint("pub-cfg.secu100.net", 8086, "http-sink", "XMEye (Xiongmai)", "vendor-management"),
    CloudEndpoint("access-dss.secu100.net", 8086, "http-sink", "XMEye (Xiongmai)", "video-cloud"),
    # Tuya
    CloudEndpoint("a2.tuyaus.com", 443, "https-sink", "Tuya Smart", "vendor-management"),
    CloudEndpoint("m2.tuyaus.com", 8883, "mqtts", "Tuya Smart", "vendor-management"),
    # Ordinary web sites the staff PC visits, and the POS payment gateway.
    CloudEndpoint("www.baidu.com", 443, "https-sink", "Baidu", "web"),
    CloudEndpoint("mail.qq.com", 443, "https-sink", "Tencent QQ Mail", "web"),
    CloudEndpoint("www.taobao.com", 443, "https-sink", "Taobao", "web"),
    CloudEndpoint("openapi.alipay.com", 443, "https-sink", "Alipay", "payment"),
)

CLOUD_BY_HOST = {c.host: c for c in CLOUDS}

_HIK_CONNECT = (
    CloudUse("litedev.hik-connect.com", 8666, "config", what="status"),
    # Handed out by the Hik-Connect platform at run time, not in the device's own configuration.
    CloudUse("mqtt.hik-connect.lab", 31006, "heartbeat", configured=False, what="status"),
)

PROFILES: tuple[Profile, ...] = (
    Profile(
        key="hik-face",
        label="Hikvision DeepinView face-capture camera (shop entrance)",
        vendor="Hikvision",
        model="iDS-2CD7A46G0-IZHS",
        firmware="V5.5.800 build 210628",
        device_type="camera",
        is_camera=True,
        face_capable=True,
        face_capture_enabled=True,
        oui="44:19:B6",
        builder="scanner.lab.devices.hikvision:build_camera",
        clouds=_HIK_CONNECT
        + (CloudUse("storeface-pic.oss-cn-hangzhou.aliyuncs.com", 443, "snapshots", what="pictures"),),
        expected_severity="high",
        expected_kinds=("face-upload",),
        services=("http/80", "https/443", "rtsp/554", "hik-sdk/8000"),
        multicast=("sadp", "ws-discovery"),
        lock_after=None,
    ),
    Profile(
        key="hik-face-idle",
        label="Hikvision face-capture camera in the back office (cloud on, nobody walks by)",
        vendor="Hikvision",
        model="iDS-2CD7146G0-IZS",
        firmware="V5.5.800 build 210628",
        device_type="camera",
        is_camera=True,
        face_capable=True,
        face_capture_enabled=False,
        oui="BC:AD:28",
        builder="scanner.lab.devices.hikvision:build_camera",
        clouds=_HIK_CONNECT,
        expected_severity="medium",
        expected_kinds=("face-cloud-enabled",),
        services=("http/80", "https/443", "rtsp/554", "hik-sdk/8000"),
        multicast=("sadp", "ws-discovery"),
        lock_after=3,
        notes="locks the admin account after 3 failed logins",
    ),
    Profile(
        key="hik-cam",
        label="Hikvision camera recording locally",
        vendor="Hikvision",
        model="DS-2CD2386G2-IU",
        firmware="V5.7.18 build 240826",
        device_type="camera",
        is_camera=True,
        face_capable=False,
        oui="C0:56:E3",
        builder="scanner.lab.devices.hikvision:build_camera",
        services=("http/80", "https/443", "rtsp/554", "hik-sdk/8000"),
        multicast=("sadp", "ws-discovery"),
    ),
    Profile(
        key="hik-nvr",
        label="Hikvision NVR with Hik-Connect",
        vendor="Hikvision",
        model="DS-7608NI-K2/8P",
        firmware="V4.30.085 build 200916",
        device_type="nvr",
        is_camera=False,
        face_capable=False,
        oui="24:48:45",
        builder="scanner.lab.devices.hikvision:build_nvr",
        clouds=_HIK_CONNECT + (CloudUse("relay.hik-connect.lab", 7760, "video", configured=False, what="video"),),
        expected_severity="low",
        expected_kinds=("video-cloud",),
        services=("http/80", "rtsp/554", "hik-sdk/8000"),
        multicast=("sadp", "ws-discovery"),
        scan_observable={"face_capable": False},
    ),
    Profile(
        key="dahua-face",
        label="Dahua WizMind face-detection camera",
        vendor="Dahua",
        model="IPC-HDW5442TM-AS",
        firmware="2.800.0000016.0.R",
        firmware_build="2020-06-05",
        device_type="camera",
        is_camera=True,
        face_capable=True,
        face_capture_enabled=True,
        oui="3C:EF:8C",
        builder="scanner.lab.devices.dahua:build_camera",
        clouds=(
            CloudUse("www.easy4ipcloud.com", 8800, "video", what="video"),
            CloudUse("iai.tencentcloudapi.com", 443, "snapshots", what="pictures"),
        ),
        expected_severity="high",
        expected_kinds=("face-upload",),
        services=("http/80", "rtsp/554", "dahua-sdk/37777"),
        multicast=("dhip", "ws-discovery"),
        clock_skew_s=7200,
        notes="camera clock is 2 hours fast (ONVIF UsernameToken must handle the skew)",
    ),
    Profile(
        key="dahua-cam",
        label="Dahua camera with P2P cloud only",
        vendor="Dahua",
        model="IPC-HFW2431S-S-S2",
        firmware="2.820.0000000.5.R",
        firmware_build="2021-03-10",
        device_type="camera",
        is_camera=True,
        face_capable=False,
        oui="E0:50:8B",
        builder="scanner.lab.devices.dahua:build_camera",
        clouds=(CloudUse("www.easy4ipcloud.com", 8800, "video", what="video"),),
        expected_severity="low",
        expected_kinds=("video-cloud",),
        services=("http/80", "rtsp/554", "dahua-sdk/37777"),
        multicast=("dhip", "ws-discovery"),
        scan_observable={"face_capable": False},
    ),
    Profile(
        key="ulucu-flow",
        label="ULUCU passenger-flow camera (face capture for visitor counting)",
        vendor="ULUCU",
        model="ULUCU passenger-flow camera",
        firmware="2.1.2",
        device_type="camera",
        is_camera=True,
        face_capable=True,
        face_capture_enabled=True,
        oui="D0:31:10",
        builder="scanner.lab.devices.ulucu:build_camera",
        clouds=(
            CloudUse("entry.device.serv.ulucu.com", 29023, "heartbeat", configured=False, what="status"),
            CloudUse("v0.api.upyun.com", 80, "snapshots", configured=False, what="pictures"),
        ),
        expected_severity="high",
        expected_kinds=("face-upload",),
        services=("http/80", "rtsp/554"),
        multicast=("ws-discovery",),
        notes="ULUCU's camera-side protocol is not public: the box shows ONVIF/RTSP on an ODM (Ingenic) NIC; "
        "only its cloud traffic names ULUCU",
        scan_observable={"vendor": False, "model": False, "firmware": False, "face_capable": False},
    ),
    Profile(
        key="salesbox",
        label="Unbranded sales-office face box with a private cloud",
        vendor="Unknown",
        model="FR-B200",
        firmware="1.0.7",
        device_type="camera",
        is_camera=True,
        face_capable=True,
        face_capture_enabled=True,
        oui="AC:95:72",
        builder="scanner.lab.devices.generic:build_salesbox",
        clouds=(CloudUse("snap.anchang-cloud.example", 443, "snapshots", configured=False, what="pictures"),),
        expected_severity="high",
        expected_kinds=("snapshot-upload-unknown",),
        services=("http/80", "rtsp/554"),
        multicast=("ws-discovery",),
        notes="ONVIF/RTSP only; GetDeviceInformation needs a login; the private cloud is in no signature",
        scan_observable={"vendor": False, "model": True, "firmware": False, "face_capable": False},
    ),
    Profile(
        key="uniview-cam",
        label="Uniview camera with EZCloud",
        vendor="Uniview",
        model="IPC3614SB-ADF28KM-I0",
        firmware="IPC_G6103-B0005P62D1905",
        device_type="camera",
        is_camera=True,
        face_capable=False,
        oui="48:EA:63",
        builder="scanner.lab.devices.uniview:build_camera",
        clouds=(CloudUse("en.ezcloud.uniview.com", 443, "heartbeat", what="status"),),
        expected_severity="low",
        expected_kinds=("video-cloud",),
        services=("http/80", "rtsp/554"),
        multicast=("ws-discovery",),
        scan_observable={"firmware": False, "face_capable": False},
    ),
    Profile(
        key="xm-cam",
        label="Xiongmai (XMEye) camera",
        vendor="Xiongmai",
        model="HI3516EV300_85H50AI",
        firmware="V5.00.R02.000529G9.10010.346717.S",
        device_type="camera",
        is_camera=True,
        face_capable=False,
        oui="84:8A:59",
        builder="scanner.lab.devices.xiongmai:build_camera",
        clouds=(
            CloudUse("pub-cfg.secu100.net", 8086, "config", what="status"),
            CloudUse("access-dss.secu100.net", 8086, "heartbeat", what="status"),
        ),
        expected_severity="low",
        expected_kinds=("video-cloud",),
        services=("http/80", "rtsp/554", "xm-dvrip/34567", "onvif/8899"),
        multicast=("xm-34569", "ws-discovery"),
        notes="resolves cloud names through a hard-coded outside resolver (the lab's stand-in for "
        "114.114.114.114), not the store's DNS",
        scan_observable={"firmware": False, "face_capable": False},
    ),
    Profile(
        key="axis-cam",
        label="Axis camera, local recording only",
        vendor="Axis",
        model="AXIS P3245-LV",
        firmware="10.12.114",
        device_type="camera",
        is_camera=True,
        face_capable=False,
        oui="AC:CC:8E",
        builder="scanner.lab.devices.axis:build_camera",
        username="root",
        services=("http/80", "rtsp/554"),
        multicast=("mdns", "ssdp", "ws-discovery"),
        scan_observable={"face_capable": False},
    ),
    Profile(
        key="tuya-cam",
        label="Tuya consumer camera",
        vendor="Tuya",
        model="TY-IPC-1080P",
        firmware="3.3.36",
        device_type="camera",
        is_camera=True,
        face_capable=False,
        oui="10:D5:61",
        builder="scanner.lab.devices.tuya:build_camera",
        clouds=(
            CloudUse("a2.tuyaus.com", 443, "config", configured=False, what="status"),
            CloudUse("m2.tuyaus.com", 8883, "heartbeat", configured=False, what="status"),
        ),
        expected_severity="low",
        expected_kinds=("video-cloud",),
        services=("tuya/6668",),
        multicast=("tuya-6667",),
        scan_observable={"model": False, "firmware": False, "is_camera": False, "face_capable": False},
    ),
    Profile(
        key="printer",
        label="Network printer",
        vendor="HP",
        model="HP LaserJet Pro M404dn",
        firmware="002_2306A",
        device_type="printer",
        is_camera=False,
        face_capable=False,
        oui="3C:D9:2B",
        builder="scanner.lab.devices.office:build_printer",
        services=("http/80", "ipp/631", "jetdirect/9100"),
        multicast=("mdns", "ssdp"),
        scan_observable={"firmware": False},
    ),
    Profile(
        key="nas",
        label="NAS storing the recorder's exports",
        vendor="Synology",
        model="DS220+",
        firmware="DSM 7.2.1-69057",
        device_type="nas",
        is_camera=False,
        face_capable=False,
        oui="00:11:32",
        builder="scanner.lab.devices.office:build_nas",
        services=("http/5000", "https/5001", "smb/445"),
        multicast=("mdns", "ssdp"),
        scan_observable={"firmware": False},
    ),
    Profile(
        key="staff-pc",
        label="Staff PC browsing ordinary HTTPS sites",
        vendor="Dell",
        model="OptiPlex 7090",
        firmware="Windows 10",
        device_type="pc",
        is_camera=False,
        face_capable=False,
        oui="A4:BB:6D",
        builder="scanner.lab.devices.office:build_pc",
        clouds=(
            CloudUse("www.baidu.com", 443, "browsing", configured=False),
            CloudUse("mail.qq.com", 443, "browsing", configured=False),
            CloudUse("www.taobao.com", 443, "browsing", configured=False),
        ),
        services=("smb/445", "rpc/135"),
        scan_observable={"model": False, "firmware": False},
        l2_only=("vendor",),
    ),
    Profile(
        key="pos",
        label="POS terminal",
        vendor="Intel",
        model="POS terminal",
        firmware="",
        device_type="pos",
        is_camera=False,
        face_capable=False,
        oui="00:1B:21",
        builder="scanner.lab.devices.office:build_pos",
        clouds=(CloudUse("openapi.alipay.com", 443, "payment", configured=False),),
        services=(),
        scan_observable={"model": False, "firmware": False, "face_capable": False},
        l2_only=("found", "vendor"),
    ),
    Profile(
        key="fragile-cam",
        label="Cheap camera that hangs on >2 connections or stray bytes",
        vendor="Generic (HiSilicon reference)",
        model="HI3518E-IPC",
        firmware="V100R003",
        device_type="camera",
        is_camera=True,
        face_capable=False,
        oui="3C:B5:3D",
        builder="scanner.lab.devices.generic:build_fragile",
        services=("http/80", "rtsp/554"),
        notes="hangs (stops answering everything) when it sees more than 2 concurrent connections or "
        "non-protocol bytes; a gentle scan must leave it answering",
        scan_observable={"model": False, "firmware": False, "face_capable": False},
    ),
)

PROFILE_BY_KEY = {p.key: p for p in PROFILES}
