import gc

from django.apps import AppConfig
from django.conf import settings


class PlatformConfig(AppConfig):
    name = "renkei.platform"
    label = "platform"
    verbose_name = "Renkei platform"

    def ready(self) -> None:
        from renkei.platform import checks  # noqa: F401 - registers the system checks

        # Python collects its youngest generation every 700 new objects; one answer of a
        # prefecture (13,000 cells) makes about 200,000, so the default spends a third of
        # that answer's time in the collector (bench/federation.py, a new question at 180
        # municipalities: p50 306 -> 222 ms, p95 418 -> 265 ms). Fewer, larger young
        # collections; the older generations keep their defaults.
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(settings.RENKEI_GC_YOUNG_THRESHOLD, older, oldest)
