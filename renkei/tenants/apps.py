from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "renkei.tenants"
    label = "tenants"
    verbose_name = "自治体（テナント）"
