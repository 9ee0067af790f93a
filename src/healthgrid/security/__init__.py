"""Security context: identities, roles granted on a scope of the organisation tree, the
audit trail, and protection of personal information (issue 3).

Every other context calls ``security.access.check(...)`` from its service functions with the
``Actor`` of the request; the API, FHIR and web adapters get that actor from
``security.http``.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from .access import SETTINGS_KEY
from .pii import SESSION_KEY, Keyring, dev_keys
from .sealer import SEALER_KEY, Sealer

# Every context finds the whole Settings here (session.info), e.g. the patient matcher's
# thresholds; security's own group stays under SETTINGS_KEY.
ALL_SETTINGS_KEY = "healthgrid_settings"


def keyring_for(settings: Settings) -> Keyring:
    sec = settings.security
    keys, current, index_key = dict(sec.pii_keys), sec.pii_current_key, sec.blind_index_key
    if settings.env == "dev" and not keys:
        stored = dev_keys(settings.data_dir)
        keys, current = {"dev1": stored["pii_key"]}, "dev1"
        index_key = index_key or stored["blind_index_key"]
    return Keyring.from_strings(keys, current, index_key)


def session_info(settings: Settings, sealer: Sealer | None = None) -> dict[str, Any]:
    """What every database session needs from security: the keyring, the settings and,
    in a server, the background sealer of the audit chain."""
    info = {SESSION_KEY: keyring_for(settings), SETTINGS_KEY: settings.security, ALL_SETTINGS_KEY: settings}
    if sealer is not None:
        info[SEALER_KEY] = sealer
    return info

