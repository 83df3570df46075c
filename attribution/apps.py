from django.apps import AppConfig


class AttributionConfig(AppConfig):
    name = "attribution"
    verbose_name = "Affiliates and tracking"

    def ready(self):
        from revvvs.tenancy import register_operator_path

        register_operator_path("attribution.reassignment", "player__brand__operator")
