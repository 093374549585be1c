"""The HTTP reward service (``acecoder-rl serve``) and its client.

- :class:`~acecoder_rl.service.client.RewardServiceClient`: a ``RewardScorer`` over ``POST /v1/score``
  (several URLs, retries); imports only ``httpx``.
- :mod:`~acecoder_rl.service.openrlhf_protocol`: OpenRLHF's ``/get_reward`` protocol as pure functions,
  ``response_from_query`` among them (used by the trainer plug-ins too).
- :func:`~acecoder_rl.service.app.create_app` / :class:`~acecoder_rl.service.app.ServiceConfig`: the
  Starlette application; :func:`~acecoder_rl.service.server.serve`: run it with uvicorn.

Names are imported lazily, so a plug-in that only needs the client does not import the web server.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "RewardServiceClient": "acecoder_rl.service.client",
    "RewardServiceError": "acecoder_rl.service.client",
    "response_from_query": "acecoder_rl.service.openrlhf_protocol",
    "RequestError": "acecoder_rl.service.schema",
    "ServiceConfig": "acecoder_rl.service.app",
    "create_app": "acecoder_rl.service.app",
    "serve": "acecoder_rl.service.server",
}

__all__ = ["RequestError", "RewardServiceClient", "RewardServiceError", "ServiceConfig", "create_app",
           "response_from_query", "serve"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'acecoder_rl.service' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
