from django.apps import AppConfig


class WidgetsConfig(AppConfig):
    name = "renkei.graphql.widgets"
    label = "widgets"
    verbose_name = "ウィジェット"
