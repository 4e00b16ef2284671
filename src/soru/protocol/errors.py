"""The errors of the layer-1 rollup rules: every rule that refuses an operation raises a
:class:`ProtocolError` subclass named after the Octez error it stands for (the Octez error
id is in each docstring), before anything changes."""

from __future__ import annotations

from soru.base.errors import SoruError


class ProtocolError(SoruError):
    """An operation the rollup rules refuse; nothing was changed."""
