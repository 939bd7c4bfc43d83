"""Self-audit with the store's own credentials (``camsweep audit``, ``camsweep scan --creds``).

A device's configuration is the strongest evidence there is: it names the cloud it registers
to, the server it pushes pictures to, and whether face capture is switched on, even when nothing
is uploading at the moment of the scan. The audit reads it, read-only (GET, and POST only for
query protocols: SOAP, JSON-RPC), with one login attempt per device and never after a lockout,
and never prints, logs or stores a credential.

Entry points: ``creds.load_credentials(path)``; ``audit_scan(result, options, creds)`` (called
by the engine after identification); ``runner.run_audit`` for an already built result. This
module stays light (the CLI imports it at start-up): the clients load on first use.
"""

from __future__ import annotations

from typing import Any

from scanner.audit.creds import CredentialSet
from scanner.models import ScanResult

__all__ = ["audit_scan"]


def audit_scan(result: ScanResult, options: Any, creds: CredentialSet) -> None:
    """Audit the devices of a finished scan with the scan's network settings (interface, port map)."""
    from scanner import engine
    from scanner.audit.runner import run_audit
    from scanner.audit.transport import NetSettings

    targets, _iface, ctx, *_ = engine.prepare(options)
    net = NetSettings(source_ip=ctx.options.source_ip, port_map=dict(ctx.options.port_map),
                      connect_timeout=max(2.0, ctx.options.connect_timeout),
                      read_timeout=max(6.0, ctx.options.read_timeout))
    # Only the scan's own targets: a device the passive listener saw elsewhere is never logged in to.
    run_audit(result, creds, net, scope=set(targets.hosts))
