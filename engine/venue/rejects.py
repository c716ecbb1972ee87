"""The engine's reject codes, as the port gives them to venues.

Why a venue needs them: an adapter maps its venue's refusals (a broker error number, a pulse
reject reason) to one :class:`Reject` code so strategies, the journal and metrics see one
vocabulary; a sandbox refuses with the same codes; and a codec checks its venue's table against
:data:`REJECT_CODES` (the sentence for every code, README's reject table). The codes are the
engine's (:mod:`engine.rejects`); this is the name adapters import.
"""

from engine.rejects import REJECT_CODES, Reject

__all__ = ["REJECT_CODES", "Reject"]
