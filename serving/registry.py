"""Registry look-ups that tell "not there" from "cannot ask".

A missing registered model, version or alias is an answer (there is no champion yet). Anything else
the MLflow client raises (the tracking server is down, a permission is refused, the URI's scheme is
unsupported) is a `RegistryUnavailableError`: a promotion or a demo must not read it as "no champion"
and silently compare against, or serve, the wrong model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

_MISSING = "RESOURCE_DOES_NOT_EXIST"


class RegistryUnavailableError(RuntimeError):
    """The model registry could not be asked (server down, permission, bad URI); the message names
    the URI and the client's error."""


def _unavailable(tracking_uri: str | None, what: str, err: Exception) -> RegistryUnavailableError:
    where = tracking_uri or "the default MLflow tracking URI"
    return RegistryUnavailableError(
        f"cannot read {what} from the model registry at {where}: {err}. Check that the tracking "
        "server is running and the URI and credentials are right; this is not read as 'no champion'."
    )


def registry_client(tracking_uri: str | None) -> MlflowClient:
    """An MlflowClient for `tracking_uri` (registry at the same URI); RegistryUnavailableError when
    the URI's scheme has no registry store."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    except MlflowException as err:
        raise _unavailable(tracking_uri, "anything", err) from err


def _missing(err: MlflowException) -> bool:
    return err.error_code == _MISSING


def alias_version(tracking_uri: str | None, model_name: str, alias: str) -> str | None:
    """The version number `alias` points at; None when the model or the alias does not exist.

    Reads the registered model's alias table rather than looking the alias up, because stores differ
    in the error code of a missing alias (SQL stores say INVALID_PARAMETER_VALUE, like a bad request).
    """
    from mlflow.exceptions import MlflowException

    client = registry_client(tracking_uri)
    try:
        model = client.get_registered_model(model_name)
    except MlflowException as err:
        if _missing(err):
            return None
        raise _unavailable(tracking_uri, f"model {model_name!r}", err) from err
    version = model.aliases.get(alias)
    return None if version is None else str(version)


def model_version(tracking_uri: str | None, model_name: str, version: str) -> ModelVersion | None:
    """The registered version; None when the model or that version does not exist."""
    from mlflow.exceptions import MlflowException

    client = registry_client(tracking_uri)
    try:
        return client.get_model_version(model_name, version)
    except MlflowException as err:
        if _missing(err):
            return None
        raise _unavailable(tracking_uri, f"{model_name} v{version}", err) from err
