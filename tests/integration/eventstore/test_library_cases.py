"""The ``eventsourcing`` library's own reusable test cases, run against a real nats-server.

Each test gets a namespace of its own (and each recorder a fresh application name in it), so
tests never see each other's streams; the streams are deleted afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ProcessRecorder,
    Tracking,
    TrackingRecorder,
)
from eventsourcing.tests.application import ExampleApplicationTestCase
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.tests.projection import (
    AggregateEventCountersProjectionTestCase,
    EventCountersView,
    EventCountersViewTestCase,
    EventSourcedProjectionTestCase,
    TaggedDecisionCountersProjectionTestCase,
)
from eventsourcing.utils import Environment

from events.jetstream import (
    Factory,
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamTrackingRecorder,
)
from tests.integration.eventstore.conftest import delete_streams, make_factory, unique_namespace

pytestmark = pytest.mark.integration


class NatsCase:
    """Gives a unittest case the server URL, a namespace of its own and factories to use."""

    nats_url: str
    namespace: str

    @pytest.fixture(autouse=True)
    def _nats(self, nats_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        self.nats_url = nats_url
        self.namespace = unique_namespace()
        self._factories: list[Factory] = []
        # For the cases that build applications from os.environ.
        monkeypatch.setenv("PERSISTENCE_MODULE", "events.jetstream")
        monkeypatch.setenv("NATS_URL", nats_url)
        monkeypatch.setenv("NATS_NAMESPACE", self.namespace)
        yield
        for factory in self._factories:
            factory.close()
        delete_streams(nats_url, self.namespace)

    def new_factory(self, purpose_app: str | None = None) -> Factory:
        """A factory for a fresh application name: its streams start empty."""
        app = purpose_app or "App" + uuid4().hex[:8]
        factory = make_factory(self.nats_url, self.namespace, app)
        self._factories.append(factory)
        return factory


class TestAggregateRecorder(NatsCase, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.new_factory().aggregate_recorder()


class TestSnapshotRecorder(NatsCase, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.new_factory().aggregate_recorder("snapshots")


class TestAggregateRecorderStringIds(NatsCase, AggregateRecorderTestCase):
    def new_originator_id(self) -> str:
        return f"account {uuid4()}/ünïcode.*>"

    def create_recorder(self) -> AggregateRecorder:
        return self.new_factory().aggregate_recorder()


class TestApplicationRecorder(NatsCase, ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        return self.new_factory().application_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestTrackingRecorder(NatsCase, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.new_factory().tracking_recorder()


class TestProcessRecorder(NatsCase, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.new_factory().process_recorder()


class TestNonInterleavingNotificationIDs(NatsCase, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.new_factory().application_recorder()


class MyTrackingRecorder(JetStreamTrackingRecorder):
    pass


class TestFactory(NatsCase, InfrastructureFactoryTestCase[Factory]):
    def setUp(self) -> None:
        self.env = Environment(
            "App" + uuid4().hex[:8],
            {
                "PERSISTENCE_MODULE": "events.jetstream",
                "NATS_URL": self.nats_url,
                "NATS_NAMESPACE": self.namespace,
            },
        )
        super().setUp()

    def expected_factory_class(self) -> type[Factory]:
        return Factory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return JetStreamAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return JetStreamApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return JetStreamTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return MyTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return JetStreamProcessRecorder


class TestExampleApplication(NatsCase, ExampleApplicationTestCase):
    expected_factory_topic = "events.jetstream.factory:Factory"


class JetStreamEventCountersView(JetStreamTrackingRecorder, EventCountersView):
    """A materialised view whose state (two counters) travels in its tracking records."""

    def _counters(self) -> dict[str, int]:
        state = self.tracking_state()
        counters: dict[str, int] = json.loads(state) if state else {}
        return counters

    def _count(self, tracking: Tracking, counter: str | None) -> None:
        def update(state: bytes | None) -> bytes:
            counters: dict[str, Any] = json.loads(state) if state else {}
            if counter is not None:
                counters[counter] = counters.get(counter, 0) + 1
            return json.dumps(counters).encode()

        self.insert_tracking_with_state(tracking, update)

    def insert_tracking(self, tracking: Tracking) -> None:
        self._count(tracking, None)  # carry the counters forward

    def get_created_event_counter(self) -> int:
        return self._counters().get("created", 0)

    def get_subsequent_event_counter(self) -> int:
        return self._counters().get("subsequent", 0)

    def incr_created_event_counter(self, tracking: Tracking) -> None:
        self._count(tracking, "created")

    def incr_subsequent_event_counter(self, tracking: Tracking) -> None:
        self._count(tracking, "subsequent")


class TestEventCountersView(NatsCase, EventCountersViewTestCase):
    def construct_event_counters_view(self) -> EventCountersView:
        view = self.new_factory().tracking_recorder(JetStreamEventCountersView)
        assert isinstance(view, JetStreamEventCountersView)
        return view


class TestAggregateEventCountersProjection(NatsCase, AggregateEventCountersProjectionTestCase):
    view_class = JetStreamEventCountersView


class TestTaggedDecisionCountersProjection(NatsCase, TaggedDecisionCountersProjectionTestCase):
    """The view is on JetStream; the DCB application itself stays on the library's POPO store."""

    view_class = JetStreamEventCountersView
    env: ClassVar[dict[str, str]] = {
        "MAPPER_TOPIC": "eventsourcing.dcb.msgpack:MessagePackMapper",
        "DCBAPPLICATION_PERSISTENCE_MODULE": "eventsourcing.dcb.popo",
    }


class TestEventSourcedProjection(NatsCase, EventSourcedProjectionTestCase):
    pass


del AggregateRecorderTestCase
del ApplicationRecorderTestCase
del TrackingRecorderTestCase
del ProcessRecorderTestCase
del NonInterleavingNotificationIDsBaseCase
del InfrastructureFactoryTestCase
del ExampleApplicationTestCase
del EventCountersViewTestCase
del AggregateEventCountersProjectionTestCase
del TaggedDecisionCountersProjectionTestCase
del EventSourcedProjectionTestCase
