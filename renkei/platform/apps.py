from django.apps import AppConfig


class PlatformConfig(AppConfig):
    name = "renkei.platform"
    label = "platform"
    verbose_name = "Renkei platform"
