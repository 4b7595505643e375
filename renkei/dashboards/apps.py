from django.apps import AppConfig


class DashboardsConfig(AppConfig):
    name = "renkei.dashboards"
    label = "dashboards"
    verbose_name = "ダッシュボード"
