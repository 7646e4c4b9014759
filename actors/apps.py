from django.apps import AppConfig


class ActorsConfig(AppConfig):
    name = "actors"
    label = "stream_analysis_actors"
    verbose_name = "Stream analysis runtime"

    def ready(self) -> None:
        from . import checks, signals, tasks  # noqa: F401 - declares actors, connects signals
