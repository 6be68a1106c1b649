from django.apps import AppConfig


class FloydCompatConfig(AppConfig):
    name = "compat.floyd"
    label = "floyd_compat"
    verbose_name = "FloydHub compatibility"
