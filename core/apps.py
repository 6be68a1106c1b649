from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Ferry core"

    def ready(self) -> None:
        from core import lookups

        lookups.register()
