from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "renkei.platform"
    label = "platform"
    verbose_name = "Renkei platform"

    def ready(self) -> None:
        from renkei.platform import checks  # noqa: F401 - registers the system checks
