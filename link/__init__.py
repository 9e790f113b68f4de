"""The actor-learner link: batches of transitions in, policy weights out, over gRPC.

    TransportConfig  host, port, token (env or file), TLS, limits, deadlines, keepalive
    LinkServer       the learner's end: in-order, exactly-once batches, a journal, weights long-poll
    ActorLink        the actor's end: a durable outbox drained in order, newest weights only
    wire             the pickle-free body format both ends (and the outbox and journal) use

The link knows batches and weights, not what is in them: the HIL session (package `hil`) decides
what a batch holds and checks it.
"""

from link.client import ActorLink, OutboxFull
from link.config import LinkConfigError, TransportConfig, free_port, is_loopback
from link.server import BatchRejected, DeliveryState, LinkServer

__all__ = ["ActorLink", "BatchRejected", "DeliveryState", "LinkConfigError", "LinkServer", "OutboxFull",
           "TransportConfig", "free_port", "is_loopback"]
