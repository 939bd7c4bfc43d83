"""Passive analysis of captures (``camsweep analyze``; DESIGN.md "Performance budget", perf_style.md A.4-A.5).

The bulk path is cheap on purpose. For pcap files, ``fastpath`` reads 16 MB batches
(``reader.iter_pcap_batches``), pulls the header fields out as numpy arrays and counts each
connection's packets in runs (``FlowTable.add_run``); pcapng, other link types and live capture go
frame by frame: ``reader.iter_frames`` streams records with flat memory, ``decode.decode`` unpacks
link/IP/TCP/UDP headers with ``struct``. Either way only the few packets that matter reach the
per-packet path (``analyze.PacketPath``, the same on both) and are dissected by small parsers that never
raise on hostile bytes: ``dns.parse_dns`` (RFC 1035), ``tls.client_hello_sni`` and
``tls.SniReassembler`` (RFC 8446 §4.1.2, RFC 6066 §3), ``httphead.parse_request_head`` (RFC 7230 §3).

Nothing here keeps payload bytes beyond the packet being looked at: pictures and video that
cameras upload are counted, never stored.
"""
