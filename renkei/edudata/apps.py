from django.apps import AppConfig


class EdudataConfig(AppConfig):
    name = "renkei.edudata"
    label = "edudata"
    verbose_name = "教育データ"
