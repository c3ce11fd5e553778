"""The request id travels with the pipeline's messages: put in a message's options when it
is sent (from the web request, or from the actor whose message was queued by one), and
bound while an actor runs that message, so the worker's log records carry it (dramatiq's
own too: the id stays bound after the actor, until the thread's next message)."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.broker import MessageProxy

from app.logging import REQUEST_ID, bind_request_id, current_request_id


class RequestIdPropagation(dramatiq.Middleware):
    def before_enqueue(self, broker: dramatiq.Broker, message: Any, delay: int | None) -> None:
        request_id = current_request_id()
        if request_id and not message.options.get(REQUEST_ID):
            message.options[REQUEST_ID] = request_id

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        bind_request_id(message.options.get(REQUEST_ID))  # None: unbinds the last message's

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        bind_request_id(None)
