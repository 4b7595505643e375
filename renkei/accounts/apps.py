from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "renkei.accounts"
    label = "accounts"
    verbose_name = "Renkei accounts"
