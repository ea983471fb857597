"""The Redis transport of workers, with acknowledgements that cannot stall consumption.

kombu's Redis QoS frees a message's prefetch slot only after removing the message from its
unacked index; when that fails (a broker that timed out, which `socket_timeout` makes possible)
the slot stays taken for good, and with a prefetch of one the worker never takes another message
(reproduced with Redis black-holed while a task finished). Here the slot is freed either way;
the message then stays in the unacked index and comes back after the visibility timeout, which
is harmless: the SQL row decides whether there is work.
"""
from __future__ import annotations

from kombu.transport import redis
from kombu.transport.virtual import QoS as VirtualQoS


class QoS(redis.QoS):
    def ack(self, delivery_tag):
        try:
            self._remove_from_indices(delivery_tag).execute()
        finally:
            VirtualQoS.ack(self, delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        try:
            if requeue:
                self.restore_by_tag(delivery_tag, leftmost=True)
            else:
                self._remove_from_indices(delivery_tag).execute()
        finally:
            VirtualQoS.ack(self, delivery_tag)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
