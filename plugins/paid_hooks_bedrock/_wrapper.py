"""``PaidBedrock``: wraps a ``bedrock-runtime`` client and behaves exactly like it."""

from __future__ import annotations

from typing import Any

from paid_hooks.plugin_kit import ClientProxy
from paid_hooks_bedrock._calls import record_call

__all__ = ["PaidBedrock"]


class PaidBedrock(ClientProxy):
    """Wraps ``boto3.client("bedrock-runtime")``; records ``converse``, ``converse_stream``,
    ``invoke_model`` and ``invoke_model_with_response_stream``.

    Every other attribute (``meta``, ``exceptions``, ``close``, other operations...) passes
    through to the client unchanged. Responses are the client's own dicts; a stream or an
    InvokeModel ``body`` in them is replaced by an equivalent object that records the call.
    """

    __slots__ = ()

    def __init__(self, client: Any) -> None:
        super().__init__(client)

    def _paid_call(self, operation: str, method: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any]) -> Any:
        client = self._paid_wrapped
        try:
            endpoint_url = client.meta.endpoint_url
        except Exception:
            endpoint_url = None
        return record_call(operation, getattr(client, method), args, kwargs, endpoint_url)

    def converse(self, *args: Any, **kwargs: Any) -> Any:
        return self._paid_call("Converse", "converse", args, kwargs)

    def converse_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._paid_call("ConverseStream", "converse_stream", args, kwargs)

    def invoke_model(self, *args: Any, **kwargs: Any) -> Any:
        return self._paid_call("InvokeModel", "invoke_model", args, kwargs)

    def invoke_model_with_response_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._paid_call("InvokeModelWithResponseStream",
                               "invoke_model_with_response_stream", args, kwargs)
