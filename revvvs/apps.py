from django.apps import AppConfig


class RevvvsConfig(AppConfig):
    name = "revvvs"
    verbose_name = "Tenancy"
