import pytest
from django.db.models import Count

from actors import tasks
from tests.conftest import at, wait_until
from tests.testapp.models import CalculationLog, CountFrame, Item


@pytest.mark.workers
def test_smoke(workers):
    Item.objects.bulk_create(Item(created_at=at(s)) for s in range(0, 300, 3))
    workers.start(processes=1, threads=4)
    tasks.coordinate.send("counts")
    wait_until(lambda: CountFrame.objects.filter(calculated=True).count() == 19, 60, "frames")
    assert all(f.item_count == 5 for f in CountFrame.objects.all())
    dup = CalculationLog.objects.values("start_time").annotate(n=Count("id")).filter(n__gt=1)
    assert not dup.exists()
