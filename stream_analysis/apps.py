from django.apps import AppConfig


class StreamAnalysisConfig(AppConfig):
    name = "stream_analysis"
    verbose_name = "Stream analysis"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, rollup_checks  # noqa: F401 - register the system checks
