"""The master station's side of ESAM-backed security (drivers layer): key source, sans-IO session over
DL/T 645, and a client over a meter link. Imports nothing above the drivers layer."""

from drivers.security.client import MeterSecurityClient
from drivers.security.keys import KeySource, SessionHandle, SoftwareKeySource, dispersion_factor
from drivers.security.session import (
    AUTHENTICATE_DI,
    CIPHERTEXT_LEVEL,
    END_SESSION_DI,
    MAC_LEVEL,
    SET_VALIDITY_DI,
    Accepted,
    Authenticated,
    EsamSession,
    RemoteControl,
    RequestKind,
    SecureRequest,
    SecurityRefused,
    SessionState,
)

__all__ = [
    "AUTHENTICATE_DI",
    "CIPHERTEXT_LEVEL",
    "END_SESSION_DI",
    "MAC_LEVEL",
    "SET_VALIDITY_DI",
    "Accepted",
    "Authenticated",
    "EsamSession",
    "KeySource",
    "MeterSecurityClient",
    "RemoteControl",
    "RequestKind",
    "SecureRequest",
    "SecurityRefused",
    "SessionHandle",
    "SessionState",
    "SoftwareKeySource",
    "dispersion_factor",
]
