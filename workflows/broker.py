"""The dramatiq broker chosen by ``BROKER_URL``, with the pipeline's actors declared on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

STEPS = "steps"
"""The errand's steps (verify, apply, archive, receipt): decisions wait on nothing else."""
EMAIL = "email"
"""Outgoing email: a flood of it (a slow SMTP relay) never delays a step."""
INTAKE = "intake"
"""Reading scanned batches (long: minutes for a large one)."""
SCHEDULED = "scheduled"
"""The periodic work: deadlines, inactivity, invitation reminders, the audit checkpoint."""
QUEUES = (STEPS, EMAIL, INTAKE, SCHEDULED)
"""Every queue; each has its own worker threads (``workflows.worker.queue_threads``)."""

DEFAULT_ACTOR_OPTIONS: dict[str, Any] = {
    "max_retries": 8,
    "min_backoff": 1_000,
    "max_backoff": 300_000,
    "time_limit": 120_000,
    "max_age": 24 * 3600 * 1000,
}


@dataclass(frozen=True)
class PipelineStep:
    fn: Callable[..., None]
    step: str
    """Name shown when the step fails, and used to resume it (``RESUME_STATE_OF_STEP``)."""
    options: dict[str, Any] = field(default_factory=dict)


PIPELINE_STEPS: dict[str, PipelineStep] = {}


def pipeline_actor(
    step: str, *, queue: str = STEPS, **options: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register a plain function as a pipeline actor on ``queue`` (one of :data:`QUEUES`);
    :func:`declare_pipeline` declares it."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")

    def register(fn: Callable[..., None]) -> Callable[..., None]:
        PIPELINE_STEPS[fn.__name__] = PipelineStep(
            fn, step, {**DEFAULT_ACTOR_OPTIONS, "queue_name": queue, **options}
        )
        return fn

    return register


def make_broker(url: str) -> dramatiq.Broker:
    if url.startswith(("redis://", "rediss://")):
        return RedisBroker(url=url)
    if url.startswith(("amqp://", "amqps://")):
        return RabbitmqBroker(url=url, confirm_delivery=True)
    if url.startswith("stub://"):
        return StubBroker()
    raise ValueError(f"BROKER_URL must start with redis://, amqp:// or stub://, not {url!r}")


def declare_pipeline(broker: dramatiq.Broker) -> None:
    """Declare every registered step (``workflows.actors``) as an actor on ``broker``."""
    for name, step in PIPELINE_STEPS.items():
        dramatiq.actor(actor_name=name, broker=broker, **step.options)(step.fn)


def step_of(actor_name: str) -> str | None:
    step = PIPELINE_STEPS.get(actor_name)
    return step.step if step else None
