from __future__ import annotations

from django.apps import AppConfig


class QartsiteConfig(AppConfig):
    name = "qartsite"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_save

        from qartsite.tokens import revoke_on_new_password

        pre_save.connect(revoke_on_new_password, sender=get_user_model(), dispatch_uid="revoke-tokens-new-password")
