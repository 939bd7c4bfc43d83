"""Report texts in English and Chinese (``--lang en|zh``).

Only the report's own labels are translated. What devices, signatures and the assessment
supply (names, models, finding titles, legal summaries) is shown as it came.
"""

from __future__ import annotations

LANGS = ("en", "zh")

_TEXTS: dict[str, dict[str, str]] = {
    "report_title": {"en": "camsweep inspection report", "zh": "camsweep 现场检查报告"},
    "generated": {"en": "Generated", "zh": "生成时间"},
    "case": {"en": "Case", "zh": "案件信息"},
    "premises": {"en": "Premises", "zh": "检查场所"},
    "operator": {"en": "Operator", "zh": "检查人员"},
    "case_id": {"en": "Case ID", "zh": "案件编号"},
    "not_given": {"en": "(not given)", "zh": "（未填写）"},
    "scan_parameters": {"en": "Scan parameters", "zh": "扫描参数"},
    "targets": {"en": "Targets", "zh": "扫描目标"},
    "started": {"en": "Started", "zh": "开始时间"},
    "finished": {"en": "Finished", "zh": "结束时间"},
    "duration": {"en": "Duration", "zh": "用时"},
    "interface": {"en": "Interface", "zh": "网络接口"},
    "hosts_scanned": {"en": "Hosts scanned", "zh": "扫描主机数"},
    "interrupted": {"en": "Interrupted: the result is partial", "zh": "扫描被中断：结果不完整"},
    "options": {"en": "Options", "zh": "选项"},
    "notes": {"en": "Notes", "zh": "说明"},
    "tool": {"en": "Tool and signatures", "zh": "工具与特征库"},
    "tool_version": {"en": "camsweep version", "zh": "camsweep 版本"},
    "result_tool": {"en": "Result produced by", "zh": "结果生成工具"},
    "signatures_used": {"en": "Signature set used by the scan", "zh": "扫描所用特征库版本"},
    "signatures_installed": {"en": "Signature set installed", "zh": "当前安装的特征库"},
    "device_signatures": {"en": "device signatures", "zh": "设备特征"},
    "cloud_signatures": {"en": "cloud signatures", "zh": "云端特征"},
    "version": {"en": "version", "zh": "版本"},
    "unavailable": {"en": "unavailable", "zh": "不可用"},
    "summary": {"en": "Summary", "zh": "概要"},
    "devices_found": {"en": "devices", "zh": "台设备"},
    "cameras": {"en": "cameras", "zh": "台摄像机"},
    "face_capable_count": {"en": "can capture faces", "zh": "台具备人脸抓拍能力"},
    "uploaders": {"en": "send picture-sized upload bursts", "zh": "台存在图片上传行为"},
    "findings": {"en": "Findings", "zh": "发现的问题"},
    "no_findings": {"en": "No findings.", "zh": "未发现问题。"},
    "severity": {"en": "Severity", "zh": "严重程度"},
    "device": {"en": "Device", "zh": "设备"},
    "kind": {"en": "Kind", "zh": "类别"},
    "title": {"en": "Finding", "zh": "问题"},
    "confidence": {"en": "Confidence", "zh": "置信度"},
    "legal": {"en": "Legal references", "zh": "法律依据"},
    "devices": {"en": "Devices", "zh": "设备详情"},
    "ip": {"en": "IP address", "zh": "IP 地址"},
    "mac": {"en": "MAC address", "zh": "MAC 地址"},
    "vendor": {"en": "Vendor", "zh": "厂商"},
    "brand": {"en": "Brand", "zh": "品牌"},
    "model": {"en": "Model", "zh": "型号"},
    "firmware": {"en": "Firmware", "zh": "固件版本"},
    "serial": {"en": "Serial number", "zh": "序列号"},
    "hostname": {"en": "Host name", "zh": "主机名"},
    "device_type": {"en": "Device type", "zh": "设备类型"},
    "is_camera": {"en": "Camera", "zh": "摄像机"},
    "face_capable": {"en": "Can capture faces", "zh": "人脸抓拍能力"},
    "face_capture_enabled": {"en": "Face capture enabled", "zh": "人脸抓拍已启用"},
    "yes": {"en": "yes", "zh": "是"},
    "no": {"en": "no", "zh": "否"},
    "unknown": {"en": "unknown", "zh": "未知"},
    "services": {"en": "Services", "zh": "开放服务"},
    "clouds": {"en": "Cloud destinations", "zh": "云端目的地"},
    "destination": {"en": "Destination", "zh": "目的地"},
    "cloud_operator": {"en": "Operator", "zh": "运营方"},
    "category": {"en": "Category", "zh": "类别"},
    "source": {"en": "Source", "zh": "来源"},
    "behaviour": {"en": "Behaviour", "zh": "行为"},
    "pictures": {"en": "Pictures (est.)", "zh": "图片数（估计）"},
    "bytes_up": {"en": "Sent", "zh": "上行"},
    "bytes_down": {"en": "Received", "zh": "下行"},
    "first_seen": {"en": "First seen", "zh": "首次出现"},
    "last_seen": {"en": "Last seen", "zh": "最后出现"},
    "seen": {"en": "Seen", "zh": "出现时间"},
    "timeline": {"en": "Upload timeline", "zh": "上传时间线"},
    "timeline_caption": {"en": "each bar is one upstream burst; its height is the bytes sent",
                         "zh": "每根竖条代表一次上行突发，高度为发送字节数"},
    "evidence": {"en": "Evidence", "zh": "证据"},
    "field": {"en": "Claim", "zh": "结论项"},
    "value": {"en": "Value", "zh": "值"},
    "detail": {"en": "Seen", "zh": "观察到的内容"},
    "sealed_evidence": {"en": "Sealed evidence", "zh": "证据固定"},
    "sealed_explain": {
        "en": "The block below is the complete evidence of this report (case fields, scan parameters, "
              "devices, their evidence and clouds, findings) as canonical JSON. Its SHA-256 over the UTF-8 "
              "bytes of the block's text is:",
        "zh": "下方区块为本报告的全部证据（案件信息、扫描参数、设备及其证据与云端目的地、发现的问题），"
              "以规范化 JSON 表示。对该区块文本的 UTF-8 字节计算的 SHA-256 值为：",
    },
    "show_evidence": {"en": "Show the evidence block", "zh": "展开证据区块"},
    "sev_high": {"en": "high", "zh": "高"},
    "sev_medium": {"en": "medium", "zh": "中"},
    "sev_low": {"en": "low", "zh": "低"},
    "sev_info": {"en": "info", "zh": "提示"},
    "footer": {"en": "Produced by camsweep. Read-only, protocol-appropriate requests; no credential guessing.",
               "zh": "由 camsweep 生成。仅发送只读、符合协议的请求；不进行密码猜测。"},
}


def text(lang: str, key: str) -> str:
    """The label ``key`` in ``lang`` (English when the language has no entry)."""
    entry = _TEXTS[key]
    return entry.get(lang) or entry["en"]


def severity_label(lang: str, severity: str) -> str:
    """A severity name in ``lang``; an unknown severity is shown as given."""
    key = f"sev_{severity}"
    return text(lang, key) if key in _TEXTS else severity


def keys() -> list[str]:
    """Every label key (the test checks each has both languages)."""
    return sorted(_TEXTS)


def has(lang: str, key: str) -> bool:
    return bool(_TEXTS.get(key, {}).get(lang))
