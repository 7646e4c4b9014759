"""The DRAMATIQ_BROKER settings actors.broker builds for other brokers."""

from __future__ import annotations

from actors.broker import MIDDLEWARE, broker_settings_for

RABBITMQ = "dramatiq.brokers.rabbitmq.RabbitmqBroker"


def test_rabbitmq_confirms_every_publish_unless_told_otherwise():
    # A worker killed right after publishing must not lose the message while its ack lands
    assert broker_settings_for(RABBITMQ, url="amqp://h")["OPTIONS"] == {
        "confirm_delivery": True,
        "url": "amqp://h",
    }
    off = broker_settings_for(RABBITMQ, confirm_delivery=False)
    assert off["OPTIONS"] == {"confirm_delivery": False}


def test_another_broker_gets_its_options_as_given_and_the_workers_middleware():
    made = broker_settings_for("dramatiq.brokers.redis.RedisBroker", url="redis://h/1")
    assert made == {
        "BROKER": "dramatiq.brokers.redis.RedisBroker",
        "OPTIONS": {"url": "redis://h/1"},
        "MIDDLEWARE": list(MIDDLEWARE),
    }
