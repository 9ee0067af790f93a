"""HealthGrid: a regional health information platform for tiered care (分级诊疗).

The package is one folder per bounded context (``registry``, later ``patients``,
``scheduling`` ...) plus the platform pieces: ``config``, ``db``, ``errors``, ``outbox``,
``fhir`` (the generic FHIR R4 machinery), ``web`` (layout and assets), ``app`` and ``cli``.
"""

__version__ = "0.1.0"
