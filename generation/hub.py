"""Why a model could not be had from the Hugging Face hub, in one line a person can act on.

diffusers answers a model that is neither reachable nor cached with a paragraph that ends
"check out the root cause in the stacktrace above"; a worker without internet (or with
HF_HUB_OFFLINE=1) should say instead what is missing and the ways to provide it.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import constants
from huggingface_hub.errors import LocalEntryNotFoundError

from generation.registry import ModelLoadError, ModelSpec

# httpx's and requests' connection failures are not subclasses of the built-in ones.
_CONNECT_ERRORS = {"ConnectError", "ConnectTimeout", "ConnectionError", "ProxyError"}


def load_error(spec: ModelSpec, error: Exception) -> ModelLoadError:
    """The ModelLoadError for error, raised while loading spec through from_pretrained."""
    if not spec.builtin and not Path(spec.source).exists() and _offline(error):
        return ModelLoadError(offline_message(spec))
    return ModelLoadError(f"cannot load model {spec.name!r} from {spec.source!r}: {error}")


def offline_message(spec: ModelSpec) -> str:
    why = ("HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE
           else "the hub cannot be reached")
    return (f"could not download model {spec.name!r} ({spec.source}) from the Hugging Face "
            f"hub: no internet ({why}) and it is not in the cache at {constants.HF_HUB_CACHE}; "
            f"download it once where there is internet (hf download {spec.source}) and set "
            f"HF_HOME to that cache, or set models.{spec.name}.source to a local folder")


def _offline(error: BaseException) -> bool:
    """Whether a connection failure (or offline mode) is among the error's causes."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ConnectionError | TimeoutError | LocalEntryNotFoundError) or (
                type(error).__name__ in _CONNECT_ERRORS):
            return True
        error = error.__cause__ or error.__context__
    return False
